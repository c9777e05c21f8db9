// Package sdk is the root of the Go worker library: the Go counterpart of
// upstream Sedna's Python lib/sedna for the parts a worker process needs to
// talk to the local controller and to its peers. Subpackages own one concern
// each: env (the environment contract), lc (reports to the local
// controller), hem (hard example mining), jointinference (the cloud
// server and edge client of a joint inference service), incrementallearning
// (train/eval entry points, hot update), modelfile (model files with hot
// reload), federated (the aggregation server and its client) and multiedge (the feature
// extraction, re-identification and video analytics servers, their clients and the pedestrian
// pipeline's algorithms).
//
// Nothing here may import the global manager or local controller packages:
// workers are separate processes and only share wire formats with them.
package sdk
