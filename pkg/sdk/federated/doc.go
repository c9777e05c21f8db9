// Package federated is federated learning's aggregation server and its Go
// client, wire-compatible with upstream Sedna's Python library
// (lib/sedna/service/server/aggregation.py and service/client.py, contract
// §5.3), so that upstream's Python FederatedLearning trainers run unchanged
// against it, and extended for fleets: quorum rounds with deadlines,
// checkpoints, admission, large models.
//
// It owns the protocol, the round state machine, the aggregation algorithms
// and the checkpoint format. It never talks to the API server; it reaches
// the local controller only through the Client's Reporter. The program that
// runs it as an aggregation worker is cmd/sedna-aggregator.
//
// # Upstream's protocol (what Python clients rely on)
//
// The server serves "/<algorithm>" (e.g. /FedAvg): a GET answers
// {"clients":[ids]}, or, when its JSON body names a connected client_id,
// {"client_id","connected_at","info"}; a WebSocket upgrade starts a session
// of JSON text frames:
//
//   - client → {"type":"subscribe","client_id":WORKER_NAME}. The server sends
//     {"type":"CLIENT_JOIN","data":id} to the clients already connected,
//     registers the new one, then sends {"type":"subscribe","client_id":id}
//     to every client including the new one: that echo is the new client's
//     acknowledgement (the Python client reads exactly one frame).
//   - client → {"type":"update_weight","client":id,"data":{"num_samples":n,
//     "weights":[one nested list per layer]},"job_name":JOB_NAME}.
//   - when a round closes, every client waiting for it gets the last
//     contributor's message turned into {"type":"recv_weight","client":..,
//     "data":{"total_sample":T,"round_number":r,"weights":W,"exit_flag":
//     "ok"|"continue"},"job_name":..,"round_number":r}. exit_flag is "ok"
//     once training is over; the Python client then reports "completed"
//     and exits.
//   - other message types are relayed unchanged to every client (here only
//     from connections that presented the job's token, see Admission).
//
// Frames are written in upstream's key order without whitespace (upstream's
// whitespace depends on its Starlette version; JSON parsers ignore it), and
// floats as Python's repr writes them ("1.0", "1e-05"), so numpy never sees
// an integer layer.
// FedAvg is the per-layer mean weighted by num_samples.
//
// # Extensions, and how they stay compatible
//
// Rounds (Policy). A round closes when it has MinClients updates and either
// every participant answered, the RoundDeadline passed since the round's
// first update, or every connected client has contributed (with a deadline,
// once every participant joined at least once: a trainer still connecting is
// waited for until the deadline). The defaults
// (MinClients = Participants, no deadline) are upstream's behaviour. A
// Python update carries no round, so the server tracks, per connection,
// the round of the last model it delivered (what a Python client trains
// from): an update built on an older model is late, discarded and counted,
// and the sender immediately receives the current model as a recv_weight —
// the frame it waits for anyway — and rejoins the next round. Round closes
// deliver only to clients waiting for an aggregate, never to a straggler
// still training, so a straggler never falls more than one model behind.
// A second update in the same round is discarded (the first counts). A new
// connection starts at the initial model, so a trainer restarted mid-job
// gets the current model after one discarded update. Go clients send
// "base_round" (the round they trained from) in data, which survives
// reconnections.
//
// Stop conditions: ExitRound (upstream's exit_round) and an optional
// TargetMetric on the round's sample-weighted mean of the metrics Go clients
// send in data.metrics. Once finished, any update is answered with the final
// model and exit_flag "ok". The server's Done closes when training is over
// and every client has left (upstream), or ExitGrace after the end; with
// ExitGrace set, only once every participant was also sent the final model
// (a trainer away when training ended gets it when it comes back).
//
// Checkpoints. After every round, before any client sees it, the global
// model, round number, metrics and finish state are written to a
// CheckpointStore (DirStore: temporary file, fsync, rename, directory
// fsync, CRC-checked on load). A restarted server resumes at the last
// completed round, so the round number a client sees never goes back. A
// checkpoint records the job's namespace and UID when the server knows them
// (ServerOptions.Namespace, JobUID); one recording another namespace or UID
// than the server's (a deleted job's, whose name was reused) is refused, and
// one without them (older) is resumed.
// Python clients that lost their connection restart and rejoin as above;
// Go clients subscribe with "sync":true and get the current model right
// after the acknowledgement (as a recv_weight with exit_flag "continue", or
// "ok" if over); they resend the update they trained if the server is still
// at their round. Python clients never ask for sync, so never see that
// unexpected frame. cmd/sedna-aggregator keeps checkpoints in a local
// directory (DirStore) or as an S3 object through
// pkg/localcontroller/storage, by default beside the model's URL, and writes
// the final model (Checkpoint.MarshalBinary) to MODEL_URL.
//
// Admission. With Admission.Token set, clients present "Authorization:
// Bearer <token>" (compared in constant time); a wrong token gets 403 and no
// token gets 401 before any upgrade, unless AllowAnonymous (compatibility
// mode, for upstream's Python clients, which send no header). Clients may
// not send recv_weight, CLIENT_JOIN, subscribe or error frames (upstream
// would relay a forged recv_weight to every trainer). An update must carry
// the connection's client_id and the server's job_name. A second connection
// with a known client_id replaces the first (a restarted trainer), which is
// closed with code 4000; upstream refuses it. An anonymous connection may not
// replace one that presented the token: it is closed with code 4004. The
// Authorization header must be exactly one "Bearer <token>"
// (workerauth.ParseBearer). Until its subscribe is accepted, a connection's
// messages are limited to 64 KiB (close code 1009 beyond). Anonymous
// connections (no token presented: compatibility mode, or no token
// configured) get what upstream's Python clients need and nothing more: the
// binary subprotocol is not offered to them (they keep JSON and
// MaxJSONMessageBytes), and a message of a type the server does not know is
// not relayed: it is dropped, counted in Stats.Invalid and answered with an
// error frame to its sender. GET /<algorithm> with a client_id shows the
// client's remote address only to requests that presented the token.
//
// Large models. A Go client may offer the WebSocket subprotocol
// "sedna.fl.binary.v1"; its updates and aggregates then travel as binary
// messages: "SFLB", version 1, dtype (4 = float32, 8 = float64), 2 zero
// bytes, a uint32 LE header length, a JSON header (the message without
// weights, plus "shapes") and the little-endian values of every layer.
// WebSocket fragmentation carries messages of any size; the server's limits
// are MaxJSONMessageBytes (16 MiB, the Python client's own cap) and
// MaxBinaryMessageBytes (1 GiB). Python clients keep JSON; so does every
// connection that presented no token (the subprotocol is offered only to
// token holders).
//
// Algorithms. Aggregator/Accumulation keep a running sum per round, so the
// server's memory does not grow with the number of clients: FedAvg and
// Mean. FedProx changes only the clients' objective: the Client passes Mu
// to the Trainer, which uses ProximalTerm and AddProximalGradient.
// ServerOptions.ServerOptimizer (FedAvgM: a server learning rate and
// momentum over the rounds' steps, its velocity kept in the checkpoint)
// turns each aggregate into the next global model; its zero value is plain
// FedAvg.
//
// The Go Client joins with backoff until the aggregator is up (upstream's
// trainer crashes if it starts first), trains through a Trainer, and
// reports each round to the LC as upstream does: kind "train", status
// "running" or "completed", ownerInfo {currentRound, sampleCount,
// startTime, updateTime}. Go clients (they subscribe with sync) also get
// how the round closed, as extra keys of recv_weight's data (Progress:
// round_clients, participants, late_clients, late_updates, and in JSON frames
// the round's metrics, which binary frames carry in their header; Python clients
// never see them), and report them as ownerInfo roundClients, participants,
// lateClients (omitted when none) and lateUpdates; with
// ClientOptions.Evaluate the report's results carry the aggregate's metrics
// as [{format, url, metrics}] (url = MODEL_URL), which GM copies to the
// aggregation Model's status.
package federated
