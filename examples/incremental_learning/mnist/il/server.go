package il

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
	sdk "github.com/sedna-go/sedna/pkg/sdk/incrementallearning"
)

// Paths and limits of the inference worker's API.
const (
	ClassifyPath = "/classify"
	StatsPath    = "/stats"
	HealthPath   = "/healthz"
	// MaxImagesPerRequest bounds one /classify batch.
	MaxImagesPerRequest = 1000
	// MaxClassifyBodyBytes bounds a /classify body; a full batch with long decimals fits.
	MaxClassifyBodyBytes = 32 << 20
)

// ClassifyRequest is the body of POST /classify: flat, row-major 28x28 images, pixels in [0,1].
// The query parameter collect=false keeps the request's hard examples out of the collection
// (for measuring on held-out images).
type ClassifyRequest struct {
	Images [][]float64 `json:"images"`
}

// ClassifyResult is the answer for one image.
type ClassifyResult struct {
	Label int `json:"label"`
	// Confidence is the probability of Label.
	Confidence float64 `json:"confidence"`
	// Hard says the miner judged the image hard; Collected that it was filed for labelling.
	Hard      bool `json:"hard"`
	Collected bool `json:"collected"`
}

// ClassifyResponse is the body of a successful POST /classify, in request order.
type ClassifyResponse struct {
	Results      []ClassifyResult `json:"results"`
	ModelVersion int              `json:"modelVersion"`
}

// Stats is the body of GET /stats.
type Stats struct {
	// ModelVersion counts the models this process loaded: 1 is MODEL_URL, each hot update adds one.
	ModelVersion int       `json:"modelVersion"`
	ModelPath    string    `json:"modelPath"`
	ModelDigest  string    `json:"modelDigest"`
	ModelLoaded  time.Time `json:"modelLoaded"`
	PID          int       `json:"pid"`
	Inferences   int64     `json:"inferences"`
	HardExamples int64     `json:"hardExamples"`
	Collected    int64     `json:"collected"`
	// CollectErrors counts hard examples that could not be written.
	CollectErrors int64 `json:"collectErrors"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

type servedModel struct {
	m        *model.Model
	path     string
	digest   string
	version  int
	loadedAt time.Time
}

// Server is the inference worker: it serves the current model, swaps it on Load, judges every
// answer with the miner and files hard examples with the collector (nil: none are filed).
type Server struct {
	miner     hem.Miner
	collector *sdk.HardExampleCollector

	mu      sync.RWMutex
	current *servedModel

	inferences, hard, collected, collectErrors atomic.Int64
	mux                                        *http.ServeMux
}

// NewServer builds the worker; call Load before serving.
func NewServer(miner hem.Miner, collector *sdk.HardExampleCollector) *Server {
	s := &Server{miner: miner, collector: collector, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST "+ClassifyPath, s.handleClassify)
	s.mux.HandleFunc("GET "+StatsPath, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	s.mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		if s.model() == nil {
			writeJSON(w, http.StatusServiceUnavailable, Error{Error: "no model loaded"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, Error{Error: fmt.Sprintf("no endpoint %s %s: use POST %s, GET %s or GET %s", r.Method, r.URL.Path, ClassifyPath, StatsPath, HealthPath)})
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Load reads the model file at path and serves it from now on; on error the previous model stays.
// It is the HotUpdater's LoadFunc.
func (s *Server) Load(ctx context.Context, path string) error {
	content, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("loading model: %w", err)
	}
	m, err := model.UnmarshalBinary(content)
	if err != nil {
		return fmt.Errorf("loading model %s: %w", path, err)
	}
	sum := sha256.Sum256(content)
	s.mu.Lock()
	version := 1
	if s.current != nil {
		version = s.current.version + 1
	}
	s.current = &servedModel{m: m, path: path, digest: hex.EncodeToString(sum[:6]), version: version, loadedAt: time.Now()}
	s.mu.Unlock()
	klog.FromContext(ctx).Info("Serving a model", "path", path, "version", version, "digest", hex.EncodeToString(sum[:6]))
	return nil
}

func (s *Server) model() *servedModel {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current
}

// Stats returns the current model and the counters.
func (s *Server) Stats() Stats {
	stats := Stats{PID: os.Getpid(), Inferences: s.inferences.Load(), HardExamples: s.hard.Load(), Collected: s.collected.Load(), CollectErrors: s.collectErrors.Load()}
	if current := s.model(); current != nil {
		stats.ModelVersion, stats.ModelPath, stats.ModelDigest, stats.ModelLoaded = current.version, current.path, current.digest, current.loadedAt
	}
	return stats
}

// Classify answers a batch with the current model (one model for the whole batch) and files the
// hard images when collect is set.
func (s *Server) Classify(ctx context.Context, images [][]float64, collect bool) (ClassifyResponse, error) {
	current := s.model()
	if current == nil {
		return ClassifyResponse{}, errors.New("no model loaded")
	}
	response := ClassifyResponse{Results: make([]ClassifyResult, 0, len(images)), ModelVersion: current.version}
	for i, image := range images {
		prediction, err := current.m.Predict(image)
		if err != nil {
			return ClassifyResponse{}, fmt.Errorf("images[%d]: %w", i, err)
		}
		result := ClassifyResult{Label: prediction.Label, Confidence: prediction.Probs[prediction.Label]}
		s.inferences.Add(1)
		if s.miner != nil {
			hard, err := s.miner.IsHard(hem.Inference{Probabilities: prediction.Probs})
			if err != nil {
				return ClassifyResponse{}, fmt.Errorf("images[%d]: mining: %w", i, err)
			}
			result.Hard = hard
		}
		if result.Hard {
			s.hard.Add(1)
			if collect && s.collector != nil {
				result.Collected = s.file(ctx, image, prediction.Label)
			}
		}
		response.Results = append(response.Results, result)
	}
	return response, nil
}

// file writes one hard example as a PNG, annotated with the model's label (a guess for the
// labeller, not a label).
func (s *Server) file(ctx context.Context, image []float64, predicted int) bool {
	pixels := FromUnit(image)
	content, err := EncodePNG(pixels)
	if err == nil {
		// Time first so the files sort in arrival order; the collector renames on a clash.
		sum := sha256.Sum256(pixels)
		name := fmt.Sprintf("%s-%s.png", time.Now().UTC().Format("20060102T150405.000000"), hex.EncodeToString(sum[:4]))
		_, err = s.collector.Add(name, content, strconv.Itoa(predicted))
	}
	if err != nil {
		s.collectErrors.Add(1)
		klog.FromContext(ctx).Error(err, "Filing a hard example failed")
		return false
	}
	s.collected.Add(1)
	return true
}

// DecodeClassifyRequest parses and validates a POST /classify body.
func DecodeClassifyRequest(body []byte) (ClassifyRequest, error) {
	var request ClassifyRequest
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&request); err != nil {
		return request, fmt.Errorf(`body is not JSON {"images": [[%d numbers in [0,1]], ...]} (JSON has no NaN or Infinity): %w`, model.Pixels, err)
	}
	if decoder.More() {
		return request, errors.New("body has data after the JSON object")
	}
	if len(request.Images) == 0 {
		return request, errors.New(`"images" is missing or empty`)
	}
	if len(request.Images) > MaxImagesPerRequest {
		return request, fmt.Errorf(`"images" has %d images, at most %d are allowed per request`, len(request.Images), MaxImagesPerRequest)
	}
	for i, image := range request.Images {
		if err := model.CheckImage(image); err != nil {
			return request, fmt.Errorf("images[%d]: %w", i, err)
		}
	}
	return request, nil
}

func (s *Server) handleClassify(w http.ResponseWriter, r *http.Request) {
	collect := true
	if raw := r.URL.Query().Get("collect"); raw != "" {
		value, err := strconv.ParseBool(raw)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, Error{Error: fmt.Sprintf("query parameter collect=%q is not a boolean", raw)})
			return
		}
		collect = value
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxClassifyBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, Error{Error: fmt.Sprintf("body is larger than %d bytes", MaxClassifyBodyBytes)})
			return
		}
		writeJSON(w, http.StatusBadRequest, Error{Error: fmt.Sprintf("reading the body: %v", err)})
		return
	}
	request, err := DecodeClassifyRequest(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, Error{Error: err.Error()})
		return
	}
	response, err := s.Classify(r.Context(), request.Images, collect)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Error{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, response)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client left.
	_ = json.NewEncoder(w).Encode(body)
}
