// Package kb is the lifelong-learning knowledge base (the server of cmd/sedna-kb): it keeps the
// tasks learned so far, their models and the index that ties them together, and answers "which
// task is this sample, and which model serves it".
//
// Routes (upstream's, under Prefix "/knowledgebase"; answers in upstream's shapes, errors as
// FastAPI's {"detail": "..."}):
//
//	POST update         multipart field "task": the index. Answers the JSON string
//	                    "/file/download?files=<index file>&name=<index file>".
//	POST update/status  {"status": <int>, "tasks": "a,b"}: the tasks' status (upstream sets 1
//	                    once deployed). Answers the index's download path.
//	POST query          ours (upstream's is a stub): {"featureSpace": "...", "features":
//	                    [[...], ...]} → {"results": [{"task", "model", "unseen", "nearest",
//	                    "score"}, ...], "index": "<download path>"}.
//	POST file/upload    multipart field "file"; stored under its file name. Answers
//	                    "/file/download?files=<name>&name=<name>".
//	GET  file/download  ?files=<stored name>&name=<name to save as>: the file's bytes.
//	GET  /healthz       "ok", unauthenticated, for probes.
//
// Upstream's KBClient makes every answered path absolute by prefixing KB_SERVER/knowledgebase.
//
// Two kinds of index. Upstream's Python workers upload a joblib pickle; it is stored opaquely as
// index.pkl and served back byte for byte, and query answers 409 while it is the current index.
// Go workers upload JSON of format IndexFormat ("sedna-kb-index/v1"):
//
//	{"format": "sedna-kb-index/v1", "featureSpace": "mnist-pool4", "dimension": 49,
//	 "tasks": [{"id": "rotation-0", "attributes": {"rotation": "0"},
//	            "model": {"url": "...", "format": "...", "metrics": {"accuracy": 0.97}, "classes": ["0", ...]},
//	            "centroids": [[...49 values...], ...], "radius": 3.2,
//	            "numberOfTrainSamples": 1000, "status": 0}]}
//
// It is validated in full (a malformed index is refused with 400 naming the field) and stored as
// index.json. query takes each sample's feature vector (computed by the worker in the named
// feature space), finds for every task the distance to its nearest centroid divided by the
// task's radius, and answers the task with the smallest such score, or "unseen" when even that
// score exceeds 1. The score is the unseen-task score the worker library measures detection with.
//
// Storage: metadata (current index, task statuses, file records) in a bbolt database, kb.db in
// the data directory; file contents in a FileStore: a local directory (DirStore, opened as a
// hostfs.Root, replaced with hostfs.WriteFileAtomic, symlinks never followed) or an S3 prefix (S3Store, through pkg/localcontroller/storage). Both
// survive restarts; uploads are spooled to a scratch file first so a cut-off upload never
// replaces a good file.
//
// Who may call what. The knowledge base is reachable from the cluster network. WriteToken (the
// job's token, e.g. from a Secret) admits every route; ReadToken admits query and file/download
// only (inference workers). Both are presented as "Authorization: Bearer <token>" and compared in
// constant time (workerauth.Admission, shared with the federated aggregator). Compat admits
// requests with no Authorization header on every route, because upstream's Python clients send
// none; a request with a wrong or malformed token is refused (403/401) in every mode, and a read
// token is refused on write routes (403). Without a write token, Compat must be on (the server
// says so rather than run open by accident). File names are one path element of [A-Za-z0-9._-],
// never starting with '.' nor containing ".."; the raw multipart file name is checked, not the
// directory-stripped one Go's multipart reader offers, so "../x" is refused, not rewritten.
// Limits: MaxFileBytes per upload (1 GiB), MaxIndexBytes per index (64 MiB), MaxQuerySamples per
// query (4096, decoded token by token and stopped at the first vector too many or of the wrong
// length), 64 KiB per update/status body; beyond them 413 or 400. MaxConcurrentWrites (4) write
// requests at once, 503 beyond; each request's body must arrive within a minute plus its size
// limit at 256 KiB/s. Server faults are logged and answered 500 with a fixed message.
//
// The package does not know about Kubernetes, the GM or the LC.
package kb
