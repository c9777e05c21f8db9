// Package jointinference owns both ends of a joint inference service's
// worker protocol, wire-compatible with upstream Sedna: the cloud server
// (POST /{job}/predict, GET /{job}) that wraps a user's big model, and the
// edge client that runs the little model, mines hard examples, asks the
// cloud about them and reports cumulative counters to the local controller.
//
// Unlike upstream, the edge never waits on the cloud longer than a deadline:
// a slow or unreachable cloud costs accuracy (the edge answers itself and a
// fallback is counted), not availability. The package runs models only
// through the Predictor and EdgeModel interfaces and reaches the LC only
// through a Reporter.
package jointinference
