// Package server is sedna-lc's HTTP API for workers, on BIND_PORT (":9100" by default): the
// route upstream's worker library posts its reports to, POST /sedna/workers/{worker}/info, plus
// GET /healthz and GET /metrics for the DaemonSet's probes and Prometheus.
//
// A report is answered 200 only after the manager of its ownerKind has queued what GM needs to
// learn durably (the Reporter committed it to the store's outbox), so a worker that saw 200 may
// forget the report even if the node loses power right after. Responses keep upstream's JSON
// shape with capitalised keys, {"Status":<code>,"Message":"..."}, and name what is wrong:
// 400 for a body that is not a valid worker message, 404 for an owner this node does not run or a
// kind without a manager, 503 when the report could not be queued (the worker library retries).
//
// The package owns request parsing, validation and the mapping of outcomes to status codes. It
// does not interpret reports (the managers do) or write to the store. Like upstream's, the API is
// unauthenticated: it trusts whatever can reach the port, which is why it refuses reports about
// resources that are not bound to this node.
package server
