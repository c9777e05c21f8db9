// Package lifelong is the Go worker library of lifelong learning jobs: task definition by
// attribute (Definition, Group), the summary of a task's training samples as a region of a
// feature space (KMeans centroids and a radius at a quantile of the training distances:
// Summarise), the JSON index of pkg/kb that ties tasks to their models (Merge), unseen-task
// detection and task allocation at inference (Router: a sample whose distance to every task's
// nearest centroid exceeds the task's radius is unseen; otherwise it goes to the nearest task's
// model, optionally letting close tasks compete on their model's confidence), a knowledge base
// client (KBClient, upstream's routes, bearer token from SEDNA_KB_TOKEN), the stage entry points
// (Worker: reads upstream's LL environment — KB_SERVER, CLOUD_KB_INDEX,
// HAS_COMPLETED_INITIAL_TRAINING, MODEL_URLS, OUTPUT_URL, TRAIN_DATASET_URL, TEST_DATASET_URL,
// ORIGINAL_DATASET_URL —, publishes an index to the knowledge base and into OUTPUT_URL, and
// reports train/eval results to the LC in upstream's condition-data shape), and the measures of
// continual learning (AUROC and precision/recall of detection, the accuracy matrix with backward
// and forward transfer).
//
// Features are the caller's: the library compares vectors of one named feature space and never
// computes them, so a worker chooses what separates its tasks (the MNIST example uses gradient
// orientation histograms, which rotation moves).
//
// It does not talk to the API server and does not decide when a stage runs (the LC does).
package lifelong
