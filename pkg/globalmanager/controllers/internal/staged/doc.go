// Package staged is what the GM controllers of the LC-driven learning jobs (incremental and
// lifelong learning) share: the LC's stage reports and their queue between syncs, the stage,
// round and round history they write into the status with the Failed, Stalled and Deployed
// conditions, and the stage pods of a round ("<job>-<stage>-<round>[-<try>]") with their retries,
// report grace and clean-up.
//
// The controllers keep what differs: which workers exist, their env, what the LC is sent and
// what else the status holds (lifelong learning's knowledge base).
//
// Files: report.go (reports and their queue), status.go (status from reports), pods.go (stage
// pods), deploy.go (the inference worker's Deployment and the round it serves).
package staged
