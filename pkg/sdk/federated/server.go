package federated

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/sedna-go/sedna/pkg/workerauth"
)

// Defaults of ServerOptions.
const (
	// DefaultMaxJSONMessageBytes is upstream's Python client frame cap: a
	// longer JSON frame would be refused by the client anyway.
	DefaultMaxJSONMessageBytes = 16 << 20
	// DefaultMaxBinaryMessageBytes bounds a binary update (a 256 M-parameter
	// model in float32).
	DefaultMaxBinaryMessageBytes = 1 << 30
	DefaultMaxClients            = 1024
	DefaultSubscribeTimeout      = 30 * time.Second
	DefaultWriteTimeout          = 10 * time.Minute
	DefaultResumeLinger          = time.Minute
	// sendQueueLen bounds the frames waiting for one client's writer.
	sendQueueLen = 64
	// maxInfoBodyBytes bounds the body of GET /<aggregation>.
	maxInfoBodyBytes = 4 << 10
	maxClientIDLen   = 253
	// maxSubscribeBytes bounds a connection's first message (the subscribe,
	// a few hundred bytes) until it is accepted: an unsubscribed connection
	// may not make the server read a model-sized message.
	maxSubscribeBytes = 64 << 10
)

// WebSocket close codes we send (4000-4999 are for applications).
const (
	closeReplaced  = 4000
	closeSlow      = 4001
	closeShutdown  = 4002
	closeBadClient = 4003
	// closeNotYours refuses an anonymous connection subscribing with the
	// client_id of a connection that presented the job's token.
	closeNotYours = 4004
)

// Admission says who may connect (workerauth.Admission: the job's token as
// "Authorization: Bearer <token>"; AllowAnonymous admits upstream's Python
// clients, which send no header). Token empty admits everyone.
type Admission = workerauth.Admission

// ServerOptions configure a Server.
type ServerOptions struct {
	// Job is the job name (JOB_NAME): updates naming another job_name are
	// refused, and checkpoints of another job are not resumed.
	Job string
	// Namespace (NAMESPACE) and JobUID (SEDNA_JOB_UID) identify the job
	// beyond its name; both are optional (upstream's GM sets neither). They
	// are recorded in checkpoints, and a checkpoint recording another
	// namespace or UID than a known one here is refused.
	Namespace string
	JobUID    string
	// Aggregator defaults to FedAvg; its Name is the WebSocket path.
	Aggregator Aggregator
	// ServerOptimizer turns each round's aggregate into the next global
	// model (FedAvgM); the zero value is plain FedAvg.
	ServerOptimizer ServerOptimizer
	Policy          Policy
	Admission       Admission
	// Store keeps a checkpoint after every round; nil keeps none.
	Store CheckpointStore
	// Initial is the global model of round 0, sent to Go clients that
	// subscribe with sync before any round closed. Optional.
	Initial Weights
	// Size limits of one incoming message per mode.
	MaxJSONMessageBytes   int64
	MaxBinaryMessageBytes int64
	// MaxClients bounds simultaneous connections (subscribed or not).
	MaxClients int
	// SubscribeTimeout bounds the wait for a new connection's subscribe.
	SubscribeTimeout time.Duration
	// WriteTimeout bounds the write of one frame to a client.
	WriteTimeout time.Duration
	// ExitGrace, when positive, ends the server this long after training
	// finished even if clients are still connected, and until then keeps it
	// up for participants that were not sent the final model yet (away when
	// training ended): it ends earlier only once every participant was sent
	// it and every client has gone. Zero waits, as upstream does, until
	// every client has gone.
	ExitGrace time.Duration
	// ResumeLinger is how long a server that resumed an already finished
	// checkpoint waits for clients before it may end (they may still need
	// the final model).
	ResumeLinger time.Duration
	// Clock is a test seam.
	Clock clock.WithDelayedExecution
}

// StatusPathSuffix is appended to the algorithm's path for our status
// endpoint: GET /<algorithm>/status answers Stats as JSON (same admission as
// the other endpoints), for the controller and for people.
const StatusPathSuffix = "/status"

// Stats are the server's counters, for logs, tests and the status endpoint.
type Stats struct {
	Round     int    `json:"round"`
	Finished  bool   `json:"finished"`
	Reason    string `json:"reason,omitempty"`
	Connected int    `json:"connected"`
	// Late counts updates trained on an older global model than the
	// current one; they are discarded and the sender gets the current
	// model.
	Late int `json:"late"`
	// Duplicate counts second updates of one client within a round; they
	// are discarded (the first counts).
	Duplicate int `json:"duplicate"`
	// Invalid counts refused messages (bad shapes, wrong client or job).
	Invalid int `json:"invalid"`
	// Replaced counts connections closed because the same client_id
	// connected again.
	Replaced int `json:"replaced"`
	// RoundsClosedShort counts rounds closed with fewer than Participants
	// updates (at the deadline, or because the others were not connected).
	RoundsClosedShort int `json:"roundsClosedShort"`
	// Missing is, for the last closed round, how many participants did not
	// contribute.
	Missing int `json:"missing"`
	// MissingClients are the clients seen since the server started that
	// did not contribute to the last closed round. The server remembers at
	// most Participants + MaxClients ids, forgetting first the ones whose
	// last connection is oldest and gone.
	MissingClients   []string           `json:"missingClients,omitempty"`
	CheckpointErrors int                `json:"checkpointErrors"`
	Metrics          map[string]float64 `json:"metrics,omitempty"`
}

// Server is the aggregation server, an http.Handler serving upstream's
// GET and WebSocket endpoints on "/<algorithm>".
type Server struct {
	opts     ServerOptions
	path     string
	logger   klog.Logger
	clock    clock.WithDelayedExecution
	upgrader websocket.Upgrader
	// anonymousUpgrader offers no subprotocol: a connection that presented
	// no token keeps JSON and its 16 MiB cap.
	anonymousUpgrader websocket.Upgrader

	mu    sync.Mutex
	conns map[*conn]struct{}
	// upgrading counts connections between admission and upgrade.
	upgrading int
	clients   map[string]*conn
	// known are the client ids seen since start, to name the missing ones,
	// each with the sequence number of its last join (knownSeq counts
	// joins); at most knownLimit of them are kept.
	known      map[string]uint64
	knownSeq   uint64
	knownLimit int
	// round is the number of completed rounds; global is its aggregate
	// (nil before the first round unless resumed).
	round  int
	global *Aggregate
	// velocity is the server optimizer's momentum (nil when it keeps none
	// or before its first step).
	velocity Weights
	frames   frameCache
	open     *openRound
	finished bool
	reason   string
	// lingering holds the end back after resuming a finished checkpoint.
	lingering bool
	// told are the client ids that were sent the final model (exit "ok"):
	// with ExitGrace set, the server ends only once every participant was
	// told (or the grace passed), so a trainer that was away when training
	// ended still gets the end instead of dialing a server that is gone.
	told     map[string]bool
	stats    Stats
	done     chan struct{}
	doneOnce sync.Once
	timers   []clock.Timer
}

type openRound struct {
	number         int
	acc            Accumulation
	contributors   map[string]bool
	count          int
	shapes         Weights // the first update's weights, for shape checks
	metrics        metricMean
	lastClient     string
	lastJob        string
	timer          clock.Timer
	deadlinePassed bool
}

// frameCache holds the encoded current aggregate per client mode.
type frameCache struct {
	json []byte
	// jsonExtended carries the round's Progress (Go clients).
	jsonExtended []byte
	binary       map[DType][]byte
}

func (f *frameCache) jsonFor(extended bool) []byte {
	if extended {
		return f.jsonExtended
	}
	return f.json
}

// NewServer validates opts and resumes from the store's checkpoint if there
// is one.
func NewServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	if opts.Job == "" {
		return nil, errors.New("creating aggregation server: job name is empty (is JOB_NAME set?)")
	}
	if opts.Aggregator == nil {
		opts.Aggregator = FedAvg{}
	}
	name := opts.Aggregator.Name()
	if name == "" || strings.ContainsAny(name, "/?#") {
		return nil, fmt.Errorf("creating aggregation server: algorithm name %q must be one path segment", name)
	}
	if err := opts.ServerOptimizer.Validate(); err != nil {
		return nil, fmt.Errorf("creating aggregation server: %w", err)
	}
	if err := opts.Policy.normalize(); err != nil {
		return nil, fmt.Errorf("creating aggregation server: %w", err)
	}
	if opts.Initial != nil {
		if err := opts.Initial.Validate(); err != nil {
			return nil, fmt.Errorf("creating aggregation server: initial model: %w", err)
		}
	}
	setDefault(&opts.MaxJSONMessageBytes, DefaultMaxJSONMessageBytes)
	setDefault(&opts.MaxBinaryMessageBytes, DefaultMaxBinaryMessageBytes)
	setDefault(&opts.MaxClients, DefaultMaxClients)
	setDefault(&opts.SubscribeTimeout, DefaultSubscribeTimeout)
	setDefault(&opts.WriteTimeout, DefaultWriteTimeout)
	setDefault(&opts.ResumeLinger, DefaultResumeLinger)
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	s := &Server{
		opts:    opts,
		path:    "/" + name,
		logger:  klog.FromContext(ctx).WithValues("job", opts.Job, "algorithm", name),
		clock:   opts.Clock,
		conns:   map[*conn]struct{}{},
		clients: map[string]*conn{},
		known:   map[string]uint64{},
		told:    map[string]bool{},
		done:    make(chan struct{}),
		upgrader: websocket.Upgrader{
			ReadBufferSize:  16 << 10,
			WriteBufferSize: 64 << 10,
			// Idle clients (most of them, most of the time) hold no write
			// buffer.
			WriteBufferPool: &sync.Pool{},
			Subprotocols:    []string{BinarySubprotocol},
			Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
				writeJSONError(w, status, reason.Error())
			},
		},
	}
	s.anonymousUpgrader = s.upgrader
	s.anonymousUpgrader.Subprotocols = nil
	if opts.Store != nil {
		cp, err := opts.Store.Load(ctx)
		if err != nil {
			return nil, fmt.Errorf("creating aggregation server: %w", err)
		}
		if cp != nil {
			if err := s.resume(cp); err != nil {
				return nil, fmt.Errorf("creating aggregation server: %w", err)
			}
		}
	}
	s.knownLimit = opts.Policy.Participants + opts.MaxClients
	s.open = s.newRound()
	s.stats.Round = s.round
	return s, nil
}

func setDefault[T int | int64 | time.Duration](field *T, def T) {
	if *field <= 0 {
		*field = def
	}
}

func (s *Server) resume(cp *Checkpoint) error {
	if cp.Job != s.opts.Job {
		return fmt.Errorf("checkpoint belongs to job %q, not %q", cp.Job, s.opts.Job)
	}
	if cp.Namespace != "" && s.opts.Namespace != "" && cp.Namespace != s.opts.Namespace {
		return fmt.Errorf("checkpoint belongs to job %q of namespace %q, this is namespace %q: delete the checkpoint or give the job its own checkpoint location", cp.Job, cp.Namespace, s.opts.Namespace)
	}
	if cp.JobUID != "" && s.opts.JobUID != "" && cp.JobUID != s.opts.JobUID {
		return fmt.Errorf("checkpoint belongs to an earlier job %q with UID %s, this job's UID is %s: delete the checkpoint to start over", cp.Job, cp.JobUID, s.opts.JobUID)
	}
	if cp.Algorithm != s.opts.Aggregator.Name() {
		return fmt.Errorf("checkpoint was made by %s, this server runs %s", cp.Algorithm, s.opts.Aggregator.Name())
	}
	if err := cp.Weights.Validate(); err != nil {
		return fmt.Errorf("checkpoint model: %w", err)
	}
	s.round = cp.Round
	if cp.Round > 0 {
		exit := ExitContinue
		if cp.Finished {
			exit = ExitOK
		}
		s.global = &Aggregate{Round: cp.Round, TotalSample: cp.TotalSample, Weights: cp.Weights, Exit: exit, JobName: s.opts.Job, Metrics: cp.Metrics}
		s.stats.Metrics = cp.Metrics
	}
	if cp.Velocity != nil {
		if s.opts.ServerOptimizer.Momentum == 0 {
			return errors.New("checkpoint holds a server momentum velocity, this server runs without server momentum")
		}
		if err := SameShapes(cp.Velocity, cp.Weights); err != nil {
			return fmt.Errorf("checkpoint velocity: %w", err)
		}
		s.velocity = cp.Velocity
	}
	s.logger.Info("Resumed from checkpoint", "round", cp.Round, "finished", cp.Finished, "savedAt", cp.SavedAt)
	if cp.Finished || cp.Round >= s.opts.Policy.ExitRound {
		reason := cp.Reason
		if reason == "" {
			reason = "exit round reached"
		}
		s.lingering = true
		s.timers = append(s.timers, s.clock.AfterFunc(s.opts.ResumeLinger, func() { go s.lingerOver() }))
		s.finishLocked(reason)
	}
	return nil
}

func (s *Server) lingerOver() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lingering = false
	s.checkDoneLocked()
}

func (s *Server) newRound() *openRound {
	return &openRound{number: s.round + 1, acc: s.opts.Aggregator.NewRound(), contributors: map[string]bool{}}
}

// Path is the URL path of both endpoints, "/<algorithm>".
func (s *Server) Path() string { return s.path }

// Done is closed when the server's work is over: training finished and every
// client left (or ExitGrace passed).
func (s *Server) Done() <-chan struct{} { return s.done }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	stats := s.stats
	stats.Connected = len(s.clients)
	stats.Metrics = maps.Clone(s.stats.Metrics)
	stats.MissingClients = slices.Clone(s.stats.MissingClients)
	return stats
}

// Checkpoint returns the current global model as a checkpoint (what the
// store holds after the last round), or nil before the first round closed.
// The aggregator writes it as the final model once training is over.
func (s *Server) Checkpoint() *Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.global == nil {
		return nil
	}
	return &Checkpoint{Job: s.opts.Job, Namespace: s.opts.Namespace, JobUID: s.opts.JobUID, Algorithm: s.opts.Aggregator.Name(), Round: s.global.Round, TotalSample: s.global.TotalSample,
		Weights: s.global.Weights.Clone(), Velocity: s.velocity.Clone(), Finished: s.finished, Reason: s.reason, Metrics: maps.Clone(s.global.Metrics), SavedAt: s.clock.Now()}
}

// Close disconnects every client and stops the timers; Done is closed.
func (s *Server) Close() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	for _, t := range s.timers {
		t.Stop()
	}
	if s.open.timer != nil {
		s.open.timer.Stop()
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(closeShutdown, "aggregator shutting down")
	}
	s.doneOnce.Do(func() { close(s.done) })
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != s.path && r.URL.Path != s.path+StatusPathSuffix {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s: the aggregation server serves %s and %s%s", r.URL.Path, s.path, s.path, StatusPathSuffix))
		return
	}
	authenticated, status, reason := s.admit(r)
	if status != 0 {
		s.logger.V(2).Info("Refused a client", "remote", r.RemoteAddr, "status", status, "reason", reason)
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sedna-aggregation"`)
		}
		writeJSONError(w, status, reason)
		return
	}
	switch {
	case r.URL.Path != s.path:
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeJSONError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(s.Stats()); err != nil {
			s.logger.V(4).Info("Writing the status failed", "err", err)
		}
	case websocket.IsWebSocketUpgrade(r):
		s.serveWebSocket(w, r, authenticated)
	case r.Method == http.MethodGet:
		s.serveInfo(w, r, authenticated)
	default:
		w.Header().Set("Allow", http.MethodGet)
		writeJSONError(w, http.StatusMethodNotAllowed, "use GET or a WebSocket upgrade")
	}
}

// admit returns whether the request presented the job's token, and 0 or the
// HTTP status refusing it with the reason.
func (s *Server) admit(r *http.Request) (bool, int, string) {
	decision := s.opts.Admission.Admit(r.Header)
	if decision.Status == http.StatusUnauthorized && !decision.Authenticated && r.Header.Get("Authorization") == "" {
		decision.Reason = "this job admits only its training workers: " + decision.Reason
	}
	return decision.Authenticated, decision.Status, decision.Reason
}

func writeJSONError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"error": message}) // a map of strings always marshals
	_, _ = w.Write(body)                                         // the client may be gone; nothing to do
}

// serveInfo answers upstream's GET /<aggregation>: with a JSON body naming a
// connected client_id, that client's info; otherwise the list of clients.
// The client's remote address is shown only to requests that presented the
// job's token.
func (s *Server) serveInfo(w http.ResponseWriter, r *http.Request, authenticated bool) {
	var query struct {
		ClientID string `json:"client_id"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxInfoBodyBytes+1))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	if len(body) > maxInfoBodyBytes {
		writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxInfoBodyBytes))
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &query); err != nil {
			writeJSONError(w, http.StatusBadRequest, `the body must be {"client_id": "<id>"}: `+err.Error())
			return
		}
	}
	s.mu.Lock()
	var answer any
	if c, ok := s.clients[query.ClientID]; ok && query.ClientID != "" {
		mode := "json"
		if c.binary {
			mode = "binary"
		}
		info := map[string]any{"mode": mode, "base_round": c.base, "waiting": c.waiting}
		if authenticated {
			info["remote"] = c.remote
		}
		answer = map[string]any{
			"client_id":    c.id,
			"connected_at": c.connectedAt.UTC().Format(time.RFC3339Nano),
			"info":         info,
		}
	} else {
		ids := make([]string, 0, len(s.clients))
		for id := range s.clients {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		answer = map[string]any{"clients": ids}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(answer); err != nil {
		s.logger.V(4).Info("Writing the client info failed", "err", err)
	}
}

// conn is one WebSocket client. Only its writer goroutine writes data
// frames; close may be called from anywhere.
type conn struct {
	id     string
	ws     *websocket.Conn
	binary bool
	dtype  DType
	remote string
	// authenticated is set when the connection presented the job's token.
	authenticated bool
	connectedAt   time.Time
	logger        klog.Logger
	send          chan outFrame
	closed        chan struct{}
	closeOnce     sync.Once
	// Guarded by Server.mu: base is the round of the last global model
	// delivered on this connection (what a Python client trains from);
	// waiting is set while the client waits for a round's aggregate.
	base    int
	waiting bool
	// extended is set for Go clients (they subscribed with sync): their
	// JSON recv_weight frames carry the round's Progress.
	extended bool
}

type outFrame struct {
	binary bool
	data   []byte
}

func (c *conn) close(code int, reason string) {
	c.closeOnce.Do(func() {
		close(c.closed)
		if c.ws == nil {
			return
		}
		deadline := time.Now().Add(time.Second)
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline) // best effort: the peer may be gone
		_ = c.ws.Close()                                                                                    // closing a dead connection can fail; it is closed either way
	})
}

func (c *conn) writeLoop(timeout time.Duration) {
	for {
		select {
		case <-c.closed:
			return
		case frame := <-c.send:
			kind := websocket.TextMessage
			if frame.binary {
				kind = websocket.BinaryMessage
			}
			if err := c.ws.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
				c.close(websocket.CloseInternalServerErr, "setting write deadline")
				return
			}
			if err := c.ws.WriteMessage(kind, frame.data); err != nil {
				c.logger.V(2).Info("Writing to the client failed; disconnecting it", "err", err)
				c.close(websocket.CloseInternalServerErr, "write failed")
				return
			}
		}
	}
}

// enqueueLocked queues a frame for c. A critical frame (acknowledgement,
// aggregate) that finds the queue full disconnects the client: it would
// otherwise wait forever for a frame it never gets. Other frames
// (CLIENT_JOIN, relays) are dropped for that client.
func (s *Server) enqueueLocked(c *conn, frame outFrame, critical bool) {
	select {
	case c.send <- frame:
	default:
		if critical {
			c.logger.Info("Client does not read its frames; disconnecting it")
			go c.close(closeSlow, "too slow reading frames")
			return
		}
		c.logger.V(2).Info("Client does not read its frames; dropped one")
	}
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, authenticated bool) {
	// A slot is reserved before the upgrade so that a refusal can still be
	// an HTTP status.
	s.mu.Lock()
	if len(s.conns)+s.upgrading >= s.opts.MaxClients {
		s.mu.Unlock()
		writeJSONError(w, http.StatusServiceUnavailable, fmt.Sprintf("the aggregation server has its maximum of %d connections", s.opts.MaxClients))
		return
	}
	s.upgrading++
	s.mu.Unlock()
	upgrader := &s.anonymousUpgrader
	if authenticated {
		upgrader = &s.upgrader
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	s.mu.Lock()
	s.upgrading--
	if err != nil {
		s.mu.Unlock()
		s.logger.V(2).Info("WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := &conn{ws: ws, remote: r.RemoteAddr, authenticated: authenticated, connectedAt: s.clock.Now(), send: make(chan outFrame, sendQueueLen), closed: make(chan struct{}), dtype: Float64}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.binary = ws.Subprotocol() == BinarySubprotocol
	c.logger = s.logger.WithValues("remote", c.remote, "binary", c.binary, "authenticated", authenticated)
	// The mode's limit applies once the subscribe is accepted.
	ws.SetReadLimit(maxSubscribeBytes)
	go c.writeLoop(s.opts.WriteTimeout)
	defer c.close(websocket.CloseNormalClosure, "")

	id, sync, err := s.readSubscribe(c)
	if err != nil {
		c.logger.V(2).Info("Refused a connection that did not subscribe", "err", err)
		c.close(closeBadClient, truncate(err.Error(), 120))
		return
	}
	c.id = id
	c.logger = c.logger.WithValues("client", id)
	if err := s.join(c, sync); err != nil {
		c.logger.Info("Refused a connection", "err", err)
		c.close(closeNotYours, truncate(err.Error(), 120))
		return
	}
	defer s.leave(c)
	if c.binary {
		ws.SetReadLimit(s.opts.MaxBinaryMessageBytes)
	} else {
		ws.SetReadLimit(s.opts.MaxJSONMessageBytes)
	}
	s.readLoop(c)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (s *Server) readSubscribe(c *conn) (string, bool, error) {
	if err := c.ws.SetReadDeadline(time.Now().Add(s.opts.SubscribeTimeout)); err != nil {
		return "", false, fmt.Errorf("setting read deadline: %w", err)
	}
	kind, data, err := c.ws.ReadMessage()
	if err != nil {
		return "", false, fmt.Errorf("reading subscribe: %w", err)
	}
	if kind != websocket.TextMessage {
		return "", false, errors.New("the first message must be a JSON subscribe")
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return "", false, fmt.Errorf("the first message is not JSON: %w", err)
	}
	if env.Type != TypeSubscribe {
		return "", false, fmt.Errorf("the first message has type %q, expected subscribe", env.Type)
	}
	if err := validClientID(env.ClientID); err != nil {
		return "", false, err
	}
	if err := c.ws.SetReadDeadline(time.Time{}); err != nil {
		return "", false, fmt.Errorf("clearing read deadline: %w", err)
	}
	return env.ClientID, env.Sync, nil
}

func validClientID(id string) error {
	if id == "" {
		return errors.New("client_id is empty")
	}
	if len(id) > maxClientIDLen {
		return fmt.Errorf("client_id is longer than %d bytes", maxClientIDLen)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return errors.New("client_id contains control characters")
		}
	}
	return nil
}

// join registers a subscribed client as upstream does: CLIENT_JOIN to the
// others, then the subscribe echo to everyone (the new client's
// acknowledgement). A second connection with a known client_id replaces the
// first: it is the same trainer restarted, and refusing it (upstream) would
// lock the trainer out until the old half-open connection times out. An
// anonymous connection may not replace one that presented the job's token:
// join refuses it with an error and registers nothing.
func (s *Server) join(c *conn, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.clients[c.id]; ok {
		if old.authenticated && !c.authenticated {
			return fmt.Errorf("client_id %q is connected with the job's token; an anonymous connection may not replace it", c.id)
		}
		s.stats.Replaced++
		delete(s.clients, c.id)
		old.logger.Info("Client connected again; closing its previous connection")
		go old.close(closeReplaced, "replaced by a new connection with the same client_id")
	}
	join := outFrame{data: clientJoinFrame(c.id)}
	for _, other := range s.clients {
		s.enqueueLocked(other, join, false)
	}
	s.clients[c.id] = c
	s.rememberLocked(c.id)
	echo := outFrame{data: subscribeFrame(c.id)}
	for _, client := range s.clients {
		s.enqueueLocked(client, echo, client == c)
	}
	c.extended = sync
	if sync {
		s.enqueueLocked(c, s.currentFrameLocked(c), true)
		c.base = s.round
	}
	c.logger.V(2).Info("Client joined", "round", s.round, "clients", len(s.clients), "sync", sync)
	return nil
}

// rememberLocked records id as known, forgetting the ids whose last join is
// oldest among the disconnected ones while more than knownLimit are known.
// Connections are at most MaxClients < knownLimit, so there always is one to
// forget.
func (s *Server) rememberLocked(id string) {
	s.knownSeq++
	s.known[id] = s.knownSeq
	for len(s.known) > s.knownLimit {
		oldest, oldestSeq := "", uint64(0)
		for known, seq := range s.known {
			if _, connected := s.clients[known]; connected {
				continue
			}
			if oldest == "" || seq < oldestSeq {
				oldest, oldestSeq = known, seq
			}
		}
		if oldest == "" {
			return
		}
		delete(s.known, oldest)
	}
}

func (s *Server) leave(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[c.id] != c {
		return // replaced
	}
	delete(s.clients, c.id)
	c.logger.V(2).Info("Client left", "round", s.round, "clients", len(s.clients))
	if !s.finished {
		s.maybeCloseLocked()
	}
	s.checkDoneLocked()
}

func (s *Server) readLoop(c *conn) {
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				c.logger.V(2).Info("Reading from the client ended", "err", err)
			}
			return
		}
		switch kind {
		case websocket.TextMessage:
			s.handleText(c, data)
		case websocket.BinaryMessage:
			if !c.binary {
				s.refuse(c, errors.New("binary frames need the "+BinarySubprotocol+" subprotocol"))
				continue
			}
			update, dtype, err := decodeBinaryUpdate(data)
			if err != nil {
				s.refuse(c, err)
				continue
			}
			s.update(c, update, dtype)
		}
	}
}

func (s *Server) handleText(c *conn, data []byte) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		s.refuse(c, fmt.Errorf("message is not JSON: %w", err))
		return
	}
	switch env.Type {
	case TypeUpdateWeight:
		update, err := decodeJSONUpdate(env)
		if err != nil {
			s.refuse(c, err)
			return
		}
		s.update(c, update, c.dtype)
	case TypeSubscribe, TypeClientJoin, TypeRecvWeight, TypeError, "":
		// Upstream relays these too; a client relaying recv_weight could
		// hand every waiting trainer a model of its choosing.
		s.refuse(c, fmt.Errorf("clients may not send %q messages", env.Type))
	default:
		// Upstream relays every other type unchanged to every client; its
		// Python clients send none, so only connections that presented the
		// job's token may.
		if !c.authenticated {
			s.refuse(c, fmt.Errorf("only connections with the job's token may send %q messages", truncate(env.Type, 64)))
			return
		}
		s.mu.Lock()
		for _, client := range s.clients {
			s.enqueueLocked(client, outFrame{data: data}, false)
		}
		s.mu.Unlock()
	}
}

func (s *Server) refuse(c *conn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseLocked(c, err)
}

func (s *Server) refuseLocked(c *conn, err error) {
	s.stats.Invalid++
	c.logger.Info("Refused a message", "err", err)
	s.enqueueLocked(c, outFrame{data: errorFrame(err.Error())}, false)
}

// update applies one update_weight.
//
// Which round a Python client trained for is not on the wire, so the server
// infers it: a Python client trains only on the last global model it
// received, and only the server sends those, so the connection's base round
// is the update's base. An update whose base is older than the current
// global model is late: it is discarded and counted, and the client gets the
// current model at once as a recv_weight, which is exactly what it waits for
// after sending; it then trains on the current model and rejoins the next
// round. A straggler is therefore never sent an aggregate while it trains
// (round closes deliver only to clients waiting for one), so it never falls
// behind by more than the round it missed. A new connection's base is 0 (the
// initial model), so a trainer that restarts mid-job gets the current model
// after its first, discarded, update. Go clients send base_round explicitly,
// which survives reconnections.
func (s *Server) update(c *conn, u *Update, dtype DType) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Client != c.id {
		s.refuseLocked(c, fmt.Errorf("update from client %q on the connection of %q", u.Client, c.id))
		return
	}
	if u.JobName != "" && u.JobName != s.opts.Job {
		s.refuseLocked(c, fmt.Errorf("update for job %q sent to the aggregator of job %q", u.JobName, s.opts.Job))
		return
	}
	c.dtype = dtype
	if s.finished {
		s.enqueueLocked(c, s.currentFrameLocked(c), true)
		c.base, c.waiting = s.round, false
		return
	}
	base := c.base
	if u.BaseRound != nil {
		base = *u.BaseRound
	}
	switch {
	case base > s.round:
		// A Go client that trained on a round this server lost (it
		// restarted without its checkpoint): not an error of the client's,
		// it adopts the current model.
		s.stats.Invalid++
		c.logger.Info("Update trained on a round this aggregator has not completed; sending the current model", "baseRound", base, "round", s.round)
		s.enqueueLocked(c, s.currentFrameLocked(c), true)
		c.base, c.waiting = s.round, false
		return
	case base < s.round:
		s.stats.Late++
		c.logger.V(2).Info("Discarded a late update; sending the current model", "baseRound", base, "round", s.round)
		s.enqueueLocked(c, s.currentFrameLocked(c), true)
		c.base, c.waiting = s.round, false
		return
	}
	open := s.open
	if open.contributors[c.id] {
		s.stats.Duplicate++
		c.logger.V(2).Info("Discarded a second update in the same round", "round", open.number)
		c.waiting = true
		return
	}
	reference := open.shapes
	if s.global != nil && s.global.Weights != nil {
		reference = s.global.Weights
	} else if reference == nil && s.opts.Initial != nil {
		reference = s.opts.Initial
	}
	if reference != nil {
		if err := SameShapes(u.Weights, reference); err != nil {
			s.refuseLocked(c, fmt.Errorf("update does not fit the model: %w", err))
			// A Python client waits for the round's aggregate anyway.
			c.waiting = true
			return
		}
	} else {
		open.shapes = zeroLike(u.Weights)
	}
	open.acc.Add(u)
	open.contributors[c.id] = true
	open.count++
	open.metrics.add(u.Metrics, u.NumSamples)
	open.lastClient, open.lastJob = u.Client, u.JobName
	c.waiting = true
	c.logger.V(4).Info("Accepted an update", "round", open.number, "updates", open.count, "numSamples", u.NumSamples)
	if open.count == 1 && s.opts.Policy.RoundDeadline > 0 {
		number := open.number
		// Timer callbacks run in their own goroutine: a fake clock calls them
		// with its lock held, and closing a round reads the clock.
		open.timer = s.clock.AfterFunc(s.opts.Policy.RoundDeadline, func() { go s.deadlinePassed(number) })
	}
	s.maybeCloseLocked()
}

func (s *Server) deadlinePassed(number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished || s.open.number != number {
		return
	}
	s.open.deadlinePassed = true
	s.logger.V(2).Info("Round deadline passed", "round", number, "updates", s.open.count, "minClients", s.opts.Policy.MinClients)
	s.maybeCloseLocked()
}

// maybeCloseLocked closes the open round when it has its quorum and either
// every participant answered, the deadline passed, or every connected client
// already contributed (a client that left is not waited for; with
// MinClients = Participants the quorum alone decides, as upstream). With a
// deadline, the last rule needs every participant to have joined at least
// once since the server started: a trainer still connecting (its first dial
// refused while the aggregator's Service had no endpoint yet, its backoff
// running) is what the deadline waits for, otherwise the others would run
// every round without it in a moment.
func (s *Server) maybeCloseLocked() {
	open := s.open
	policy := s.opts.Policy
	if open.count == 0 || open.count < policy.MinClients {
		return
	}
	switch {
	case open.count >= policy.Participants:
		s.closeRoundLocked("all participants")
	case open.deadlinePassed:
		s.closeRoundLocked("deadline")
	default:
		if policy.RoundDeadline > 0 && len(s.known) < policy.Participants {
			return
		}
		for id := range s.clients {
			if !open.contributors[id] {
				return
			}
		}
		s.closeRoundLocked("every connected client")
	}
}

func (s *Server) closeRoundLocked(why string) {
	open := s.open
	if open.timer != nil {
		open.timer.Stop()
	}
	weights, total, err := open.acc.Result()
	if err != nil {
		s.logger.Error(err, "Aggregating the round failed", "round", open.number)
		return
	}
	// The server optimizer steps from the current global model: the last
	// aggregate, or the initial model before the first round (without one
	// the first aggregate is taken as it is).
	base := s.opts.Initial
	if s.global != nil {
		base = s.global.Weights
	}
	velocity := s.velocity
	if base != nil {
		if weights, velocity, err = s.opts.ServerOptimizer.Step(base, weights, s.velocity); err != nil {
			s.logger.Error(err, "Server optimizer step failed", "round", open.number)
			return
		}
	}
	s.velocity = velocity
	s.round = open.number
	agg := &Aggregate{Round: s.round, TotalSample: total, Weights: weights, Exit: ExitContinue, Client: open.lastClient, JobName: open.lastJob, Metrics: open.metrics.result()}
	if agg.JobName == "" {
		agg.JobName = s.opts.Job
	}
	reason := ""
	switch {
	case s.round >= s.opts.Policy.ExitRound:
		reason = fmt.Sprintf("exit round %d reached", s.opts.Policy.ExitRound)
	case s.opts.Policy.Target != nil && s.opts.Policy.Target.Reached(agg.Metrics):
		reason = fmt.Sprintf("target %s reached (%s=%v)", s.opts.Policy.Target, s.opts.Policy.Target.Name, agg.Metrics[s.opts.Policy.Target.Name])
	}
	if reason != "" {
		agg.Exit = ExitOK
	}
	s.global, s.frames = agg, frameCache{}
	missing := s.opts.Policy.Participants - open.count
	s.stats.Round, s.stats.Missing, s.stats.Metrics = s.round, missing, agg.Metrics
	s.stats.MissingClients = nil
	for id := range s.known {
		if !open.contributors[id] {
			s.stats.MissingClients = append(s.stats.MissingClients, id)
		}
	}
	slices.Sort(s.stats.MissingClients)
	agg.Progress = Progress{RoundClients: open.count, Participants: s.opts.Policy.Participants,
		LateClients: slices.Clone(s.stats.MissingClients), LateUpdates: s.stats.Late}
	if missing > 0 {
		s.stats.RoundsClosedShort++
	}
	s.logger.Info("Round closed", "round", s.round, "updates", open.count, "missing", missing, "closedBy", why, "totalSample", total, "metrics", agg.Metrics, "exit", agg.Exit)
	// The checkpoint comes before any client sees the round, so a restarted
	// server never goes back behind what a client received.
	if s.opts.Store != nil {
		cp := &Checkpoint{Job: s.opts.Job, Namespace: s.opts.Namespace, JobUID: s.opts.JobUID, Algorithm: s.opts.Aggregator.Name(), Round: s.round, TotalSample: total, Weights: weights, Velocity: velocity, Finished: reason != "", Reason: reason, Metrics: agg.Metrics, SavedAt: s.clock.Now()}
		if err := s.opts.Store.Save(context.Background(), cp); err != nil {
			s.stats.CheckpointErrors++
			s.logger.Error(err, "Checkpoint failed; training goes on, a restart would resume from an older round", "round", s.round)
		}
	}
	for _, c := range s.clients {
		if c.waiting {
			s.enqueueLocked(c, s.currentFrameLocked(c), true)
			c.base, c.waiting = s.round, false
		}
	}
	s.open = s.newRound()
	if reason != "" {
		s.finishLocked(reason)
	}
}

func (s *Server) finishLocked(reason string) {
	s.finished, s.reason = true, reason
	s.stats.Finished, s.stats.Reason = true, reason
	s.logger.Info("Training finished", "round", s.round, "reason", reason)
	if s.opts.ExitGrace > 0 {
		s.timers = append(s.timers, s.clock.AfterFunc(s.opts.ExitGrace, func() {
			go func() {
				s.logger.Info("Exit grace passed; ending", "connected", s.Stats().Connected)
				s.Close()
			}()
		}))
	}
	s.checkDoneLocked()
}

func (s *Server) checkDoneLocked() {
	everyoneTold := s.opts.ExitGrace <= 0 || len(s.told) >= s.opts.Policy.Participants
	if s.finished && !s.lingering && len(s.clients) == 0 && everyoneTold {
		s.doneOnce.Do(func() { close(s.done) })
	}
}

// currentFrameLocked is the recv_weight of the current global model in c's
// encoding: the same bytes the round's close sent (encoded once per mode).
// Before the first round it carries round 0 and the initial model (or null
// weights): only Go clients that asked for sync see it.
func (s *Server) currentFrameLocked(c *conn) outFrame {
	if c.id != "" && (s.finished || (s.global != nil && s.global.Exit == ExitOK)) {
		s.told[c.id] = true
	}
	agg := s.global
	if agg == nil {
		agg = &Aggregate{Round: 0, Weights: s.opts.Initial, Exit: ExitContinue, Client: c.id, JobName: s.opts.Job}
		if s.finished {
			agg.Exit = ExitOK
		}
		return s.encodeFor(c, agg)
	}
	if c.binary {
		if frame, ok := s.frames.binary[c.dtype]; ok {
			return outFrame{binary: true, data: frame}
		}
	} else if cached := s.frames.jsonFor(c.extended); cached != nil {
		return outFrame{data: cached}
	}
	frame := s.encodeFor(c, agg)
	if frame.binary != c.binary {
		return frame // an error frame; not cached
	}
	if c.binary {
		if s.frames.binary == nil {
			s.frames.binary = map[DType][]byte{}
		}
		s.frames.binary[c.dtype] = frame.data
	} else {
		if c.extended {
			s.frames.jsonExtended = frame.data
		} else {
			s.frames.json = frame.data
		}
		if len(frame.data) > DefaultMaxJSONMessageBytes {
			s.logger.Info("The aggregate is larger than upstream Python clients accept (16 MiB); use binary Go clients for this model", "bytes", len(frame.data))
		}
	}
	return frame
}

func (s *Server) encodeFor(c *conn, agg *Aggregate) outFrame {
	if !c.binary {
		return outFrame{data: recvWeightJSON(agg, c.extended)}
	}
	frame, err := recvWeightBinary(agg, c.dtype)
	if err != nil {
		s.logger.Error(err, "Encoding the aggregate failed", "round", agg.Round)
		return outFrame{data: errorFrame("the aggregator could not encode the model: " + err.Error())}
	}
	return outFrame{binary: true, data: frame}
}
