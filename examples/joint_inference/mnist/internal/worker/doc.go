// Package worker holds the pieces the MNIST cloud and edge workers are made
// of, kept out of their main packages so they can be tested together: a
// model file watcher (hot reload), the cloud Predictor, the edge model
// adapter and the edge's application HTTP API. It only wires the example's
// model package to pkg/sdk/jointinference; it owns no protocol.
package worker

// PodIP is read to choose a bind address when none is configured; the
// global manager does not inject it, a template may (downward API).
const PodIP = "POD_IP"
