// Package federatedlearning is the GM controller of FederatedLearningJobs.
//
// It owns the job's children and converges them on every sync: the Service "<job>-aggregation"
// on port 7363, the aggregation worker pod "<job>-aggregation" and one training worker pod
// "<job>-train-<i>" per spec.trainingWorkers[i], on that template's node with the host's network
// (upstream) and the DNS policy ClusterFirstWithHostNet unless the template sets one, so that
// AGG_IP resolves. Pod names are deterministic: a second create fails with AlreadyExists, so
// neither a lagging cache nor a GM restart starts a second worker. Each pod's WORKER_NAME is its
// pod name. A deleted pod is created again; a pod built from an earlier spec (its spec hash
// differs: a spec edit, a Model's new URL) is deleted and created anew once gone; a training pod
// whose index left the spec is deleted. restartPolicy defaults to upstream's OnFailure.
//
// The workers get upstream's env contract so that an upstream Python FL worker runs unchanged:
// the aggregation worker NAMESPACE, WORKER_NAME, JOB_NAME, AGG_BIND_PORT, PARTICIPANTS_COUNT,
// TRANSMITTER, AGG_DATA_PATH (s3), MODEL_URL and PRETRAINED_MODEL_URL; the training workers
// AGG_PORT, AGG_IP ("<job>-aggregation.<ns>"), WORKER_NAME, JOB_NAME, PARTICIPANTS_COUNT,
// NAMESPACE, MODEL_NAME, DATASET_NAME, LC_SERVER, TRANSMITTER, AGG_DATA_PATH (s3), MODEL_URL,
// PRETRAINED_MODEL_URL and TRAIN_DATASET_URL. MODEL_URL and AGG_DATA_PATH are write targets (a
// host path's directory is mounted read-write, an s3:// URL comes with its credentials): the
// aggregator writes the global model and its checkpoints there. Both kinds of workers also get
// the job's worker token (Secret "<job>-federatedlearningjob-worker-token") as SEDNA_AGG_TOKEN, the trainers as
// SEDNA_WORKER_TOKEN for the LC too, and the aggregator SEDNA_AGG_COMPAT, "false" only when the
// job's annotation sedna.io/federated-compat is "false" (clients without the token refused), and
// SEDNA_JOB_UID, the job's UID (a checkpoint is resumed only by the job that wrote it).
//
// Status, written through the status subresource only when it changes: phase, startTime,
// completionTime, active/succeeded/failed counted from the pods, Ready (False with the reason
// while a Model, Dataset, credential Secret or the token Secret is missing or unusable), Failed
// (a current worker pod failed; the message names it) and Complete (every training worker
// succeeded and no worker is active), both final for the job's generation: editing the spec of
// an ended job runs it again. From the training workers' reports (forwarded by their LCs): round
// (the highest currentRound), Training (upstream's DoTraining, "Round <n> reaches at <time>"),
// ClientsLate (True, reason RoundDeadline, naming the workers missing from the newest round that
// said, or, when it names none but had fewer clients than participants, how many it had; False,
// AllClientsReported, when a newer round had all) and the aggregated model's
// metrics, put on the aggregation Model's status.metrics and in status.metrics as
// "key=value, ..." (the Metrics printer column). A report must name its worker, a pod of the job
// scheduled on the reporting LC's node; any other is refused (the hub logs it and counts it in
// its rejected-reports metric, reason "invalid", and the LC drops it).
//
// Each training node's LC gets its own copy of the job, carrying the token's SHA-256 and the
// job's workers on that node with their IPs (pkg/workerauth), so that it takes reports only from
// them.
//
// Files: controller.go (construction, handlers, publishing), upstream.go (reports), sync.go
// (convergence), workers.go (pure builders of the workers), status.go (status).
package federatedlearning
