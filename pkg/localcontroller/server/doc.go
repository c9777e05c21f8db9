// Package server is sedna-lc's HTTP API for workers, on BIND_PORT (":9100" by default): the
// route upstream's worker library posts its reports to, POST /sedna/workers/{worker}/info, plus
// GET /healthz and GET /metrics for the DaemonSet's probes and Prometheus.
//
// Who may report: the API listens on the node network, so anything there can reach it. A report
// about a job this node holds is acted on only when it comes from one of that job's workers, as
// GM published them with the job (pkg/workerauth): a bearer token whose SHA-256 is the job's
// published hash, or, without an Authorization header, a TCP peer address that is the pod IP of a
// published worker whose name is the report's. A wrong or malformed token is refused even from a
// worker's address. Refusals are 403, counted by reason and logged with the peer's address.
//
// Answers keep upstream's JSON shape with capitalised keys, {"Status":<code>,"Message":"..."}.
// Upstream's worker library treats any HTTP status but 200 as a failure, retries for 15 s and
// then stops reporting for good, and upstream's LC answered 200 to everything it could read. So
// this API answers HTTP 400 only where upstream's did (a body that is not a JSON worker message,
// or a name differing from the path), 403 for refusals, and HTTP 200 otherwise, with the real
// outcome in the body's Status: 200 once the report is durably queued for GM (a worker that saw it
// may forget the report even if the node loses power right after); 400 for content this node
// cannot use; 404 for an owner this node does not run or a kind without a manager; 503 when the
// report could not be queued (the outbox is full). Reports answered 200 but not acted on are
// counted by reason (sedna_lc_worker_api_dropped_reports_total) and logged at V(2).
//
// The package owns request parsing, validation, the worker check and the mapping of outcomes to
// answers. It does not interpret reports (the managers do) or write to the store.
package server
