// Package messagelayer is GM's end of the GM↔LC channel: a websocket server over TLS that
// authenticates each LC as the node it runs on, keeps per-node desired state and delivers it
// reliably, and routes the LC's reports to the feature controllers.
//
// Delivery: for every node the hub keeps the latest version of each resource bound to it (not a
// backlog), sends a full snapshot followed by a sync frame on every (re)connect, numbers every
// frame and resends those not acknowledged in time. A slow node holds at most one pending frame
// per resource, so it can neither block other nodes nor grow GM's memory without bound.
//
// Authorization: a node receives only resources published to it, and a report is accepted only
// about a resource published to the reporting node.
//
// Authentication: LocalTokenVerifier checks an LC's projected service-account token as
// kube-apiserver does (signature with the issuer's published keys, claims, the bound pod and
// service account in an informer of the LC pods); LocalFirstAuthenticator sends what it cannot
// decide to TokenReview, whose acceptances are cached briefly.
//
// Credentials: a connection is closed when its token expires or a periodic check refuses it
// (the LC's pod is gone).
//
// Reports are deduplicated by the LC store's sequence numbers. A report is handled, then its
// per-node mark is persisted (a MarkStore: a ConfigMap), then it is acknowledged: deduplication
// survives GM restarts, and a GM dying before the mark is written leaves the report to the next
// GM (handled at least once; handlers are idempotent). Handling is in memory: a GM dying between
// the ack and the status write loses the effect unless the LC sends the report again.
//
// The package talks to the Kubernetes API only for TokenReview, the service-account issuer's
// discovery documents, the LC pods and service accounts (read only) and its marks ConfigMap; feature controllers
// decide what is bound where (Publish/Unpublish) and what a report means (ReportHandler).
package messagelayer
