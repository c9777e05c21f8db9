package multiedge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/workerauth"
)

// DefaultMaxBodyBytes bounds a request body: a 1080p RGB frame in base64 is about 8 MiB.
const DefaultMaxBodyBytes = 16 << 20

// The HTTP timeouts of the pipeline's servers (NewHTTPServer). ReadTimeout lets the largest body
// (DefaultMaxBodyBytes) arrive at about 140 KB/s, a slow edge uplink; WriteTimeout, which runs
// from the end of the request's header, also covers the handler (its calls downstream time out
// after 10 s) and the answer; IdleTimeout closes kept-alive connections nobody uses.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 2 * time.Minute
	WriteTimeout      = 3 * time.Minute
	IdleTimeout       = 2 * time.Minute
)

// NewHTTPServer returns the http.Server of a pipeline endpoint serving handler, with the
// timeouts above: no caller holds a connection or a handler for ever.
func NewHTTPServer(ctx context.Context, handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// ServerOptions configures any of the three servers.
type ServerOptions struct {
	// Token is the pipeline token callers must present. Empty is refused unless AllowAnonymous.
	Token string
	// AllowAnonymous admits callers without a token (upstream's Python clients send none); a
	// wrong token is still refused. With an empty Token it admits everyone.
	AllowAnonymous bool
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// OnEndOfStream (ReID server only) is called when a camera says it has no more frames.
	OnEndOfStream func(camera string)
}

// Server is one multi-edge HTTP server: its routes, who may call them, and request counters.
type Server struct {
	service      string
	admission    workerauth.Admission
	maxBodyBytes int64
	mux          *http.ServeMux
	ready        func() bool

	mu       sync.Mutex
	counters map[string]int
}

func newServer(service string, opts ServerOptions) (*Server, error) {
	if opts.Token == "" && !opts.AllowAnonymous {
		return nil, fmt.Errorf("creating the %s server: no pipeline token (%s); set %s=true to serve anyone on purpose", service, EnvToken, EnvAllowAnonymous)
	}
	s := &Server{
		service:      service,
		admission:    workerauth.Admission{Token: opts.Token, AllowAnonymous: opts.AllowAnonymous},
		maxBodyBytes: opts.MaxBodyBytes,
		mux:          http.NewServeMux(),
		ready:        func() bool { return true },
		counters:     map[string]int{},
	}
	if s.maxBodyBytes <= 0 {
		s.maxBodyBytes = DefaultMaxBodyBytes
	}
	s.mux.HandleFunc("GET /"+service+"/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s on the %s server", r.Method, r.URL.Path, service))
	})
	return s, nil
}

// ServeHTTP admits the caller, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if decision := s.admission.Admit(r.Header); decision.Status != 0 {
		s.count("refused")
		writeError(w, decision.Status, decision.Reason)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Status is what the status endpoint answers.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	counters := make(map[string]int, len(s.counters))
	for key, value := range s.counters {
		counters[key] = value
	}
	return Status{Service: s.service, Ready: s.ready(), Counters: counters}
}

func (s *Server) count(key string) {
	s.mu.Lock()
	s.counters[key]++
	s.mu.Unlock()
}

// Run listens on addr and serves until ctx ends.
func (s *Server) Run(ctx context.Context, addr string) error {
	var listenConfig net.ListenConfig
	listener, err := listenConfig.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for %s requests on %s: %w", s.service, addr, err)
	}
	return s.Serve(ctx, listener)
}

// Serve serves on listener until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, listener net.Listener) error {
	server := NewHTTPServer(ctx, s)
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving %s on %s: %w", s.service, listener.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	shutdownErr := server.Shutdown(shutdownCtx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s on %s: %w", s.service, listener.Addr(), err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shutting down %s on %s: %w", s.service, listener.Addr(), shutdownErr)
	}
	return nil
}

// validated is a request body that can check itself.
type validated[T any] interface {
	*T
	Validate() error
}

// handlePost registers a JSON POST endpoint: bounded body, strict decoding, validation, then fn.
func handlePost[Req any, PReq validated[Req], Resp any](s *Server, path string, fn func(context.Context, *Req) (*Resp, error)) {
	s.mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBodyBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", tooLarge.Limit))
				return
			}
			writeError(w, http.StatusBadRequest, fmt.Sprintf("reading the request body: %v", err))
			return
		}
		req := new(Req)
		if err := json.Unmarshal(body, req); err != nil {
			s.count("malformed")
			writeError(w, http.StatusBadRequest, fmt.Sprintf("request body is not the JSON %T expects: %v", *req, err))
			return
		}
		if err := PReq(req).Validate(); err != nil {
			s.count("malformed")
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		resp, err := fn(r.Context(), req)
		if err != nil {
			var bad *BadRequestError
			if errors.As(err, &bad) {
				s.count("malformed")
				writeError(w, http.StatusBadRequest, bad.Error())
				return
			}
			klog.FromContext(r.Context()).Error(err, "Request failed", "service", s.service, "path", path)
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		s.count(path)
		writeJSON(w, http.StatusOK, resp)
	})
}

// BadRequestError is a handler error that is the caller's fault (400).
type BadRequestError struct{ Reason string }

func (e *BadRequestError) Error() string { return e.Reason }

func writeJSON(w http.ResponseWriter, status int, value any) {
	encoded, err := json.Marshal(value)
	if err != nil {
		status, encoded = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The header is sent; a failed write means the client went away.
	_, _ = w.Write(append(encoded, '\n'))
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, ErrorResponse{Error: message})
}
