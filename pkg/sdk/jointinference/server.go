package jointinference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// DefaultMaxBodyBytes bounds a predict request. Images travel as JSON number
// arrays, so requests are large; 32 MiB fits a 1080p RGB frame with room.
const DefaultMaxBodyBytes = 32 << 20

// Predictor is the user's big model.
type Predictor interface {
	// Predict answers one request. The returned value is marshalled as the
	// "result" field. ctx ends when the client goes away.
	Predict(ctx context.Context, req PredictRequest) (any, error)
}

// PredictorFunc adapts a function to Predictor.
type PredictorFunc func(ctx context.Context, req PredictRequest) (any, error)

// Predict implements Predictor.
func (f PredictorFunc) Predict(ctx context.Context, req PredictRequest) (any, error) {
	return f(ctx, req)
}

// ServerOptions configures the cloud server.
type ServerOptions struct {
	// Job is the URL path segment (JOB_NAME, "sedna" for GM-created workers).
	Job string
	// Predictor runs the big model.
	Predictor Predictor
	// Infos is served by GET /{job}.
	Infos []ModelInfo
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Server is the cloud inference server. It is an http.Handler.
type Server struct {
	job          string
	predictor    Predictor
	infos        []ModelInfo
	maxBodyBytes int64
	mux          *http.ServeMux
}

// NewServer validates opts and builds the routes.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Job == "" || strings.Contains(opts.Job, "/") {
		return nil, fmt.Errorf("creating joint inference server: job name %q must be one non-empty path segment", opts.Job)
	}
	if opts.Predictor == nil {
		return nil, errors.New("creating joint inference server: a Predictor is required")
	}
	s := &Server{
		job:          opts.Job,
		predictor:    opts.Predictor,
		infos:        append([]ModelInfo{}, opts.Infos...),
		maxBodyBytes: opts.MaxBodyBytes,
		mux:          http.NewServeMux(),
	}
	if s.maxBodyBytes <= 0 {
		s.maxBodyBytes = DefaultMaxBodyBytes
	}
	s.mux.HandleFunc("POST /"+s.job+"/predict", s.handlePredict)
	s.mux.HandleFunc("GET /"+s.job, s.handleInfo)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s: use POST /%s/predict or GET /%s", r.Method, r.URL.Path, s.job, s.job))
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Run listens on addr (BIG_MODEL_BIND_IP:BIG_MODEL_BIND_PORT) and serves
// until ctx ends.
func (s *Server) Run(ctx context.Context, addr string) error {
	var listenConfig net.ListenConfig
	listener, err := listenConfig.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for joint inference requests on %s: %w", addr, err)
	}
	return s.Serve(ctx, listener)
}

// Serve serves on listener until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, listener net.Listener) error {
	server := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving joint inference on %s: %w", listener.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	shutdownErr := server.Shutdown(shutdownCtx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving joint inference on %s: %w", listener.Addr(), err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shutting down joint inference on %s: %w", listener.Addr(), shutdownErr)
	}
	return nil
}

func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, InfoResponse{Infos: s.infos})
}

func (s *Server) handlePredict(w http.ResponseWriter, r *http.Request) {
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
	var req PredictRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("request body is not a JSON object {\"data\":...}: %v", err))
		return
	}
	if len(req.Data) == 0 || bytes.Equal(req.Data, []byte("null")) {
		writeError(w, http.StatusBadRequest, `request body has no "data"`)
		return
	}
	result, err := s.predictor.Predict(r.Context(), req)
	if err != nil {
		klog.FromContext(r.Context()).Error(err, "Cloud prediction failed", "job", s.job)
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("predicting: %v", err))
		return
	}
	// Encode before writing the header, so an unencodable result becomes a
	// 500 rather than a truncated 200.
	encoded, err := json.Marshal(PredictResponse{Result: result})
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("encoding the prediction: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// The client may have gone; nothing useful can be done with the error.
	_, _ = w.Write(append(encoded, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, value any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The header is sent; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(value)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, ErrorResponse{Error: message})
}
