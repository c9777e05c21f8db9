// Package incrementallearning is the GM controller of IncrementalLearningJobs.
//
// The LC of the job's Dataset node drives the rounds (train → eval → deploy, see
// pkg/localcontroller/managers/incrementallearning); this controller does what the LC cannot:
//
//   - It sends the job, with its status, to the LC of Dataset.spec.nodeName and binds there the
//     job's Models (initial, deploy, initial eval) and credential Secret; the Dataset goes to its
//     node through the Dataset feature.
//   - It takes the LC's stage reports in order and writes them to the status (stage, stageState,
//     round, stageData, and each closed round into rounds, capped at MaxRoundHistory), with the
//     Ready, Training and Failed conditions and Events. Relayed worker reports are only counted.
//   - On Train/Ready and Eval/Ready it creates the stage's pod "<job>-<train|eval>-<round>" from
//     the stage template and the input the LC reported, and reports Starting, Running and, after
//     maxStageAttempts failed pods ("<job>-<stage>-<round>-<try>", exponential delay), Failed
//     with reason StagePodFailed; the LC reads these from the status it is sent. A succeeded pod
//     does not complete a stage: the LC does, from the worker's report. A stage pod that
//     disappears is created again. Pods of earlier rounds are deleted when a round starts.
//   - The locations in the LC's stage input (models, data, output directory, data index) come
//     from whatever reported to the LC, so each must lie within what the job itself declares
//     (workers.Scope: its outputDir, its Dataset's URL and that index's directory, its Models'
//     URLs; the same s3 bucket and prefix); anything else fails the stage with reason URLRefused
//     naming the URL, and no pod is built from it.
//   - A stage report with a problem (the LC cannot write or read what the stage needs) sets the
//     Stalled condition with the LC's reason and message; the next report without one clears it.
//   - A stage whose pod succeeded fails with WorkerDidNotReport after reportGrace of silence,
//     counted only while the job's LC is connected (runtime.NodeChannel): an edge working
//     offline keeps the worker's report and sends it when it reconnects.
//   - Every worker gets the job's worker token (Secret "<job>-incrementallearningjob-worker-token", created once,
//     SEDNA_WORKER_TOKEN by reference); the copy sent to the LC carries the token's SHA-256 and
//     the job's worker pods on that node with their IPs (pkg/workerauth).
//   - It keeps the inference worker Deployment "<job>-deployment-inference" (one replica): with
//     hot update it mounts the job's hot-update directory, without it a newly deployed round
//     rolls the worker.
//
// Pods do not get upstream's forced hostNetwork: workers reach their LC at the node's IP. Like
// upstream, the LC writes round data, trained models and hot-update files on the Dataset's node,
// so the stage and inference templates must run there (GM never sets nodeName).
//
// Files: controller.go (construction, handlers), upstream.go (LC reports), downstream.go (what
// the LC is sent), sync.go (convergence), workers.go (pure builders of the workers), status.go
// (status from reports and workers), metrics.go.
package incrementallearning
