package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

const (
	// DefaultAddr is upstream's BIND_PORT on all interfaces. sedna-lc always passes an address:
	// by default its node's (NODE_IP), never all interfaces unless asked.
	DefaultAddr = ":9100"
	// DefaultMaxBodyBytes bounds a worker message; reports are a few kilobytes.
	DefaultMaxBodyBytes int64 = 1 << 20
	// ShutdownTimeout is how long Run waits for requests in flight once its context is done.
	ShutdownTimeout = 10 * time.Second

	// WorkerInfoPattern is the route upstream's worker library posts to.
	WorkerInfoPattern = "POST /sedna/workers/{worker}/info"
)

// Options configure the worker API.
type Options struct {
	// Addr is the address Run listens on; "" means DefaultAddr.
	Addr string
	// MaxBodyBytes bounds a request body; zero or negative means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Registry holds the LC's metrics, served on /metrics next to the server's own; may be nil.
	Registry prometheus.Gatherer
}

// Server is the worker API. It is an http.Handler; Run serves it on Options.Addr.
type Server struct {
	addr         string
	maxBodyBytes int64
	store        *store.Store
	dispatcher   *managers.Dispatcher
	handler      http.Handler
	requests     *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	refused      *prometheus.CounterVec

	// refusalsMu guards refusals, the refusals so far by reason, which sample the log.
	refusalsMu sync.Mutex
	refusals   map[string]uint64
}

// Reasons a report answered 200 was not acted on (the dropped_reports_total label).
const (
	droppedInvalid         = "invalid"          // content this LC cannot use, or the manager refused it
	droppedNoManager       = "no_manager"       // a kind no manager on this node takes reports of
	droppedUnforwardedKind = "unforwarded_kind" // a kind whose reports go nowhere (upstream drops them too)
	droppedUnknownOwner    = "unknown_owner"    // an owner not bound to this node
	droppedStoreError      = "store_error"      // the owner could not be read from the store
	droppedOutboxFull      = "outbox_full"      // the outbox is at its budget
	droppedQueueFailed     = "queue_failed"     // queueing failed otherwise
)

var dropReasons = []string{
	droppedInvalid, droppedNoManager, droppedUnforwardedKind, droppedUnknownOwner,
	droppedStoreError, droppedOutboxFull, droppedQueueFailed,
}

// New returns the worker API over the node's store (to tell whether a report's owner is bound to
// this node) and the managers' dispatcher.
func New(opts Options, st *store.Store, d *managers.Dispatcher) *Server {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{
		addr:         opts.Addr,
		maxBodyBytes: opts.MaxBodyBytes,
		store:        st,
		dispatcher:   d,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sedna_lc", Subsystem: "worker_api", Name: "requests_total",
			Help: "HTTP requests to the LC's worker API by status code.",
		}, []string{"code"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sedna_lc", Subsystem: "worker_api", Name: "dropped_reports_total",
			Help: "Worker reports answered 200, as upstream's LC did, but not acted on, by reason.",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sedna_lc", Subsystem: "worker_api", Name: "refused_reports_total",
			Help: "Worker reports about a job on this node refused (403) because the sender is not one of its workers, by reason.",
		}, []string{"reason"}),
	}
	for _, reason := range dropReasons {
		s.dropped.WithLabelValues(reason)
	}
	for _, reason := range refusalReasons {
		s.refused.WithLabelValues(reason)
	}
	// The server's own metrics live in a registry of their own, so that several Servers (tests)
	// or an LC registry that is only a Gatherer never conflict; /metrics serves both.
	own := prometheus.NewRegistry()
	own.MustRegister(s.requests, s.dropped, s.refused)
	gatherers := prometheus.Gatherers{own}
	if opts.Registry != nil {
		gatherers = append(gatherers, opts.Registry)
	}

	mux := http.NewServeMux()
	mux.HandleFunc(WorkerInfoPattern, s.handleWorkerInfo)
	// Without this, the mux would answer other methods with a plain-text 405.
	mux.HandleFunc("/sedna/workers/{worker}/info", s.methodNotAllowed)
	// Anything else gets upstream's JSON shape too, so a misconfigured worker logs a readable answer.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeResponse(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s: workers post to /sedna/workers/{worker}/info", truncate(r.URL.Path)))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok") // a failed write means the prober left
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ErrorLog: klogErrorLog{}}))
	s.handler = s.countRequests(mux)
	return s
}

// ServeHTTP serves the worker API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run listens on Options.Addr and serves until ctx is done, then stops accepting connections and
// waits up to ShutdownTimeout for the requests in flight, so a report being queued is answered.
func (s *Server) Run(ctx context.Context) error {
	var listenConfig net.ListenConfig
	listener, err := listenConfig.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listening for worker reports on %s: %w", s.addr, err)
	}
	return s.Serve(ctx, listener)
}

// Serve is Run on a listener the caller opened; it closes the listener.
func (s *Server) Serve(ctx context.Context, listener net.Listener) error {
	logger := klog.FromContext(ctx).WithValues("address", listener.Addr().String())
	server := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Requests carry the LC's logger but not its cancellation: a report in flight when the LC
		// stops is still queued and answered.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:    newStdLogger(logger),
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	logger.Info("Serving the worker API")

	select {
	case err := <-served:
		return fmt.Errorf("serving the worker API on %s: %w", listener.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	shutdownErr := server.Shutdown(shutdownCtx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		shutdownErr = errors.Join(shutdownErr, err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shutting down the worker API on %s: %w", listener.Addr(), shutdownErr)
	}
	logger.Info("Worker API stopped")
	return nil
}

// response is upstream's answer shape, capitalised keys included: the worker library parses it.
type response struct {
	Status  int    `json:"Status"`
	Message string `json:"Message"`
}

// unforwardedKinds are the kinds upstream's library reports about whose reports neither upstream's
// GM nor ours uses (multi-edge inference, and the library's "default" job kind).
var unforwardedKinds = map[string]bool{
	"reidjob": true, "videoanalyticsjob": true, "featureextractionservice": true,
	"objectsearchservice": true, "objecttrackingservice": true, "default": true,
}

func writeResponse(w http.ResponseWriter, status int, message string) {
	writeBody(w, status, status, message)
}

// writeBody answers with HTTP code and outcome in the body's Status.
func writeBody(w http.ResponseWriter, code, outcome int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// A failed write means the worker hung up; it retries on anything but a 200 it read.
	_ = json.NewEncoder(w).Encode(response{Status: outcome, Message: message})
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeResponse(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed: worker reports are POSTed", r.Method))
}

func (s *Server) handleWorkerInfo(w http.ResponseWriter, r *http.Request) {
	worker := r.PathValue("worker")
	logger := klog.FromContext(r.Context()).WithValues("worker", worker, "remote", r.RemoteAddr)

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeResponse(w, http.StatusBadRequest, fmt.Sprintf("request body exceeds the limit of %d bytes", tooLarge.Limit))
			return
		}
		writeResponse(w, http.StatusBadRequest, fmt.Sprintf("reading the request body: %v", err))
		return
	}
	msg, err := parseWorkerMessage(worker, body)
	var unacceptable *unacceptableError
	if errors.As(err, &unacceptable) {
		s.drop(w, logger, droppedInvalid, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		// A body upstream's LC could not read either, or a name differing from the path.
		logger.V(2).Info("Refused a malformed worker report", "err", err)
		writeResponse(w, http.StatusBadRequest, err.Error())
		return
	}
	logger = logger.WithValues("owner", msg.OwnerKey().String(), "phase", msg.Kind, "status", msg.Status)

	handler, ok := s.dispatcher.WorkerMessageHandler(msg.OwnerKind)
	if !ok && unforwardedKinds[msg.OwnerKind] {
		// Upstream's LC dropped these with its plain "OK" too: an upstream multi-edge worker
		// reports them and must see success.
		s.drop(w, logger, droppedUnforwardedKind, http.StatusOK, fmt.Sprintf("OK: reports about %s are not forwarded", msg.OwnerKind))
		return
	}
	if !ok {
		s.drop(w, logger, droppedNoManager, http.StatusNotFound, fmt.Sprintf("this node takes no worker reports about ownerKind %q", msg.OwnerKind))
		return
	}
	ownerKey := store.ResourceKey{Kind: msg.OwnerKind, Namespace: msg.Namespace, Name: msg.OwnerName}
	owner, found, err := s.store.GetResource(ownerKey)
	if err != nil {
		logger.Error(err, "Reading the owner of a worker report failed")
		s.drop(w, logger, droppedStoreError, http.StatusInternalServerError, fmt.Sprintf("reading %s from the local store: %v", ownerKey, err))
		return
	}
	if !found {
		s.drop(w, logger, droppedUnknownOwner, http.StatusNotFound, fmt.Sprintf("%s %s/%s is not bound to this node", msg.OwnerKind, msg.Namespace, msg.OwnerName))
		return
	}

	ids, err := jobIdentities(owner.Object)
	if err != nil {
		logger.Error(err, "Reading the published workers of a job failed; refusing its worker reports")
		s.refuse(w, logger, refusal{reason: refusedUnreadableIdentities, message: fmt.Sprintf("this node cannot tell the workers of %s %s/%s", msg.OwnerKind, msg.Namespace, msg.OwnerName)})
		return
	}
	if refused := authorize(r, msg.Name, ids); refused != nil {
		s.refuse(w, logger, *refused)
		return
	}
	msg.PublishedWorker = ids.publishes(msg.Name)

	if err := handler.HandleWorkerMessage(klog.NewContext(r.Context(), logger), msg); err != nil {
		switch {
		case errors.Is(err, managers.ErrInvalidMessage):
			s.drop(w, logger, droppedInvalid, http.StatusBadRequest, err.Error())
		case errors.Is(err, store.ErrOutboxFull):
			s.drop(w, logger, droppedOutboxFull, http.StatusServiceUnavailable, "outbox full: "+err.Error())
		default:
			logger.Error(err, "Queueing a worker report failed")
			s.drop(w, logger, droppedQueueFailed, http.StatusServiceUnavailable, err.Error())
		}
		return
	}
	logger.V(4).Info("Accepted worker report")
	writeResponse(w, http.StatusOK, "OK")
}

// drop answers a report this LC does not act on the way upstream's LC did: HTTP 200, with the
// real outcome (status) in the body. Upstream's library treats any other answer as a failure,
// retries for 15 s and then stops reporting for good; the Go library reads the body.
func (s *Server) drop(w http.ResponseWriter, logger klog.Logger, reason string, status int, message string) {
	s.dropped.WithLabelValues(reason).Inc()
	logger.V(2).Info("Dropped a worker report", "reason", reason, "outcome", status, "message", message)
	writeBody(w, http.StatusOK, status, message)
}

// refuse answers a report about a job this node holds from a source that is not one of the job's
// workers (contract C1).
// Anyone on the node network can send these: the 1st, 2nd, 4th, 8th... refusal per reason are
// logged, the others only at V(4), so that a flood cannot fill the node's disk; the metric
// sedna_lc_worker_api_refused_reports_total counts them all.
func (s *Server) refuse(w http.ResponseWriter, logger klog.Logger, refused refusal) {
	s.refused.WithLabelValues(refused.reason).Inc()
	s.refusalsMu.Lock()
	if s.refusals == nil {
		s.refusals = make(map[string]uint64)
	}
	s.refusals[refused.reason]++
	count := s.refusals[refused.reason]
	s.refusalsMu.Unlock()
	if count&(count-1) != 0 {
		logger = logger.V(4)
	}
	logger.Info("Refused a worker report from a source that is not the job's worker", "reason", refused.reason,
		"message", refused.message, "refusedForReason", count)
	writeResponse(w, http.StatusForbidden, refused.message)
}

// countRequests counts every request by the status code it was answered with.
func (s *Server) countRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(recorder, r)
		s.requests.WithLabelValues(strconv.Itoa(recorder.status)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer (flushing /metrics).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
