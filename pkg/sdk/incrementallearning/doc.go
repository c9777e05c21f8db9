// Package incrementallearning is the worker side of an IncrementalLearningJob, wire-compatible
// with upstream Sedna's Python library: the training and evaluation entry points (Train, Eval)
// that read the environment GM gives the stage pods and report the outcome to the local
// controller, the HotUpdater that makes an inference worker load each model the LC deploys
// (polling model_config.json), and a HardExampleCollector that files hard examples for labelling.
//
// Reports go to POST {LC_SERVER}/sedna/workers/{WORKER_NAME}/info with ownerKind
// "incrementallearningjob": train → kind train with results [{format,url,metrics}], eval → kind
// eval with one result per model of MODEL_URLS in that order, hot update → kind deploy. Result
// URLs have DATA_PATH_PREFIX removed, so the LC sees host paths.
//
// The package runs no model itself: the user's functions train, evaluate and load.
package incrementallearning
