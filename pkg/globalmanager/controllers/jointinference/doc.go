// Package jointinference is the GM controller of JointInferenceServices.
//
// It owns the service's children and converges them on every sync: the cloud worker Deployment
// "<name>-deployment-cloud", its Service "<name>-cloud" on port 5000, the edge worker Deployment
// "<name>-deployment-edge" and, when asked for, the HPAs "hpa-<deployment>". Worker pods get
// upstream's env contract (plus JOB_NAME on both sides, and an LC_SERVER that works without
// hostNetwork) and their Models' locations through pkg/globalmanager/workers. Children changes
// and Model changes enqueue the service; status (Ready/Failed conditions, active, failed, phase)
// is written through the status subresource only when it changes.
//
// It also sends each service to the LC of its edge worker's node, binds the edge model there,
// and turns the edge workers' reports (upstream's cumulative inference counters) into
// status.metrics: the latest counters of each edge worker (its pod's name, WORKER_NAME), summed,
// with uploadCloudRatio the ratio of the sums; a worker's counters leave with its pod.
//
// Every worker gets the service's worker token (Secret "<name>-jointinferenceservice-worker-token", created once,
// SEDNA_WORKER_TOKEN by reference), and the copy sent to the edge node carries the token's
// SHA-256 and the service's worker pods on that node with their IPs, so that the LC takes
// reports only from them (pkg/workerauth).
//
// Files: controller.go (construction, handlers, publishing), upstream.go (reports and metrics),
// sync.go (convergence), workers.go (pure builders of the workers), status.go (status from the
// children).
package jointinference
