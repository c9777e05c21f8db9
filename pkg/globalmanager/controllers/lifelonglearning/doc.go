// Package lifelonglearning is the GM controller of LifelongLearningJobs.
//
// The LC of the job's Dataset node drives the rounds (train → eval → deploy) and reports each
// transition as a stage report in the shape incremental learning's LC sends (contract C2: phase,
// status, round, input, output, roundResult, problem); this controller runs the same stage
// machine as incremental learning (package controllers/internal/staged) with lifelong learning's
// workers:
//
//   - It sends the job, with its status, to the LC of Dataset.spec.nodeName and binds there the
//     job's credential Secret (no Models: the knowledge base holds them).
//   - It takes the LC's stage reports in order and writes them to the status (stage, stageState,
//     round, stageData, the closed rounds in rounds, capped at MaxRoundHistory) with the Ready,
//     Training, Failed, Stalled and Deployed conditions. A report whose output names models
//     rewrites status.knowledgeBase as upstream does (see knowledgebase.go).
//   - On Train/Ready and Eval/Ready it creates the stage's pod "<job>-<train|eval>-<round>"
//     (retries "<job>-<stage>-<round>-<try>") with upstream's env, retries failed pods and fails
//     a stage whose worker never reported, exactly as incremental learning.
//   - After the first deployed round it keeps the inference worker Deployment
//     "<job>-deployment-inference"; every further deployed round rolls it (upstream restarts the
//     inference pod on Deploy), so it loads the new index.
//
// Env (upstream's contract, read by upstream's Python library unchanged):
//
//	all:       NAMESPACE, JOB_NAME, WORKER_NAME (the pod's name), LC_SERVER, KB_SERVER
//	           (config knowledgeBaseServer.server), SEDNA_WORKER_TOKEN, and SEDNA_KB_TOKEN when
//	           knowledgeBaseServer.tokenSecret is set
//	train:     HAS_COMPLETED_INITIAL_TRAINING ("true" once a round's training completed, else
//	           "false"), CLOUD_KB_INDEX (only when "true": the KB index the last completed
//	           training wrote), OUTPUT_URL (the round's output directory), TRAIN_DATASET_URL,
//	           ORIGINAL_DATASET_URL
//	eval:      MODEL_URLS (the trained KB index, ";"-joined), OUTPUT_URL, TEST_DATASET_URL,
//	           ORIGINAL_DATASET_URL
//	inference: OUTPUT_URL (spec.outputDir), MODEL_URLS (<outputDir>/deploy/index.pkl, which
//	           the LC writes on Deploy)
//
// The last KB index comes from the Train/Ready input's first model (the LC keeps it in its round
// state) or, for an LC that sends none, from the newest round in status.rounds that names one.
// Locations the LC reports must lie within the job's outputDir or its Dataset (workers.Scope),
// or be the configured knowledge base's own URLs (the KB's download links carry a query);
// anything else fails the stage with reason URLRefused.
//
// As in incremental learning and unlike upstream, pods do not get a forced hostNetwork: workers
// reach their LC at the node's IP. Output directories are given with a trailing "/" so that a
// host-path output mounts the directory itself rather than its parent.
//
// Files: controller.go (construction, handlers), upstream.go (LC reports), downstream.go (what
// the LC is sent), sync.go (convergence), workers.go (pure builders of the workers),
// knowledgebase.go (status.knowledgeBase from reports), status.go (conditions).
package lifelonglearning
