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
