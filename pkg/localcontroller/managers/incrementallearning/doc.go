// Package incrementallearning is sedna-lc's incremental learning manager: for every
// IncrementalLearningJob GM binds to this node (the node of the job's Dataset) it drives the
// job's train → eval → deploy rounds.
//
// The rounds follow one state machine, Next in package managers/internal/rounds (shared with
// lifelong learning): a table that says, for every (stage, stageState) and event, the next
// state, and refuses every other pair. The manager turns
// what happens into events: the train trigger firing (evaluated every checkPeriodSeconds on the
// number of new training samples), worker reports posted to the LC's HTTP API, the job status GM
// re-publishes (stageState Starting/Running/Failed of the current stage and round), the deploy
// trigger's verdict on the evaluation metrics, and the outcome of putting the model in place.
//
// Per job it keeps one record in the store's state namespace "incrementallearningjob", keyed
// <namespace>/<name>: the state, the current round's data and models, the finished rounds, and
// the reports GM has not been handed yet. The samples already split into the train pool and the
// eval versions (up to the size of the index, tens of MiB) are a store blob of their own
// (namespace "incrementallearningjob-pools"), written only when they change, so that saving a
// worker report stays a small write. Every transition is saved BEFORE its report is queued, and
// queued reports are saved with it, so after an LC restart the round resumes where it was and
// nothing GM needs is lost (a report may reach GM twice; every report names its round, phase and
// status).
//
// The manager writes only: the round's data files under spec.outputDir (host paths below the
// LC's allowed write roots, or s3:// with the job's credentialName), the trained model copied
// into the job's hot-update directory or over the deploy Model's URL (host or S3), and
// model_config.json (through the model manager). It reads the dataset index (host or S3) and
// trained models. Every host path is opened through package hostfs, beneath the allowed root, with
// no symlink followed, so a worker that swaps a directory for a symlink cannot redirect a read or
// a write. When a step cannot be carried out because of the node (a write refused, read-only,
// full, outside the roots; an index that cannot be read), the job keeps its state, retries with
// backoff and sends GM a stage report of the unchanged state with a problem {reason, message}
// naming the path and the errno; the next report without one clears it. It does not create pods
// or write the job's status: GM does both, from the stage reports.
package incrementallearning
