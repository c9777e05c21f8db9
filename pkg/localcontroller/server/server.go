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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

const (
	// DefaultAddr is upstream's BIND_PORT on all interfaces.
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
	}
	// The server's own metrics live in a registry of their own, so that several Servers (tests)
	// or an LC registry that is only a Gatherer never conflict; /metrics serves both.
	own := prometheus.NewRegistry()
	own.MustRegister(s.requests)
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
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A failed write means the worker hung up; it retries on anything but a 200 it read.
	_ = json.NewEncoder(w).Encode(response{Status: status, Message: message})
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
	if err != nil {
		logger.V(2).Info("Refused a malformed worker report", "err", err)
		writeResponse(w, http.StatusBadRequest, err.Error())
		return
	}
	logger = logger.WithValues("owner", msg.OwnerKey().String(), "phase", msg.Kind, "status", msg.Status)

	handler, ok := s.dispatcher.WorkerMessageHandler(msg.OwnerKind)
	if !ok && unforwardedKinds[msg.OwnerKind] {
		// Upstream's LC answers 200 and drops these, and its library retries anything else for
		// 15 s per report: an upstream multi-edge worker must not stall on its reports.
		logger.V(2).Info("Dropped a worker report of a kind whose reports go nowhere")
		writeResponse(w, http.StatusOK, fmt.Sprintf("OK: reports about %s are not forwarded", msg.OwnerKind))
		return
	}
	if !ok {
		logger.V(2).Info("Refused a worker report of a kind no manager takes")
		writeResponse(w, http.StatusNotFound, fmt.Sprintf("this node takes no worker reports about ownerKind %q", msg.OwnerKind))
		return
	}
	ownerKey := store.ResourceKey{Kind: msg.OwnerKind, Namespace: msg.Namespace, Name: msg.OwnerName}
	_, found, err := s.store.GetResource(ownerKey)
	if err != nil {
		logger.Error(err, "Reading the owner of a worker report failed")
		writeResponse(w, http.StatusInternalServerError, fmt.Sprintf("reading %s from the local store: %v", ownerKey, err))
		return
	}
	if !found {
		logger.V(2).Info("Refused a worker report about an owner not bound to this node")
		writeResponse(w, http.StatusNotFound, fmt.Sprintf("%s %s/%s is not bound to this node", msg.OwnerKind, msg.Namespace, msg.OwnerName))
		return
	}

	if err := handler.HandleWorkerMessage(klog.NewContext(r.Context(), logger), msg); err != nil {
		if errors.Is(err, managers.ErrInvalidMessage) {
			logger.V(2).Info("Manager refused the worker report", "err", err)
			writeResponse(w, http.StatusBadRequest, err.Error())
			return
		}
		logger.Error(err, "Queueing a worker report failed")
		writeResponse(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	logger.V(4).Info("Accepted worker report")
	writeResponse(w, http.StatusOK, "OK")
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
