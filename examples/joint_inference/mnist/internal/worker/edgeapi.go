package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/api"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/jointinference"
)

// MaxClassifyBodyBytes bounds a POST /classify body: a full batch of
// api.MaxImagesPerRequest images written with long decimals fits.
const MaxClassifyBodyBytes = 32 << 20

// Inferrer is the part of *jointinference.Edge the API uses.
type Inferrer interface {
	Infer(ctx context.Context, data any) (jointinference.Result, error)
	Stats() jointinference.Stats
}

var _ Inferrer = (*jointinference.Edge)(nil)

// EdgeAPI is the edge worker's application API.
type EdgeAPI struct {
	edge Inferrer
	// parallelism is how many images of one request run at once; hard ones
	// wait on the cloud, so a little concurrency hides its latency.
	parallelism int
	mux         *http.ServeMux
}

// NewEdgeAPI builds the routes: POST /classify, GET /stats, GET /healthz.
func NewEdgeAPI(edge Inferrer, parallelism int) *EdgeAPI {
	a := &EdgeAPI{edge: edge, parallelism: max(parallelism, 1), mux: http.NewServeMux()}
	a.mux.HandleFunc("POST "+api.ClassifyPath, a.handleClassify)
	a.mux.HandleFunc("GET "+api.StatsPath, a.handleStats)
	a.mux.HandleFunc("GET "+api.HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s: use POST %s, GET %s or GET %s",
			r.Method, r.URL.Path, api.ClassifyPath, api.StatsPath, api.HealthPath))
	})
	return a
}

// ServeHTTP implements http.Handler.
func (a *EdgeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// DecodeClassifyRequest parses and validates a POST /classify body.
func DecodeClassifyRequest(body []byte) (api.ClassifyRequest, error) {
	var request api.ClassifyRequest
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
	if len(request.Images) > api.MaxImagesPerRequest {
		return request, fmt.Errorf(`"images" has %d images, at most %d are allowed per request`, len(request.Images), api.MaxImagesPerRequest)
	}
	for i, image := range request.Images {
		if err := model.CheckImage(image); err != nil {
			return request, fmt.Errorf("images[%d]: %w", i, err)
		}
	}
	return request, nil
}

func (a *EdgeAPI) handleClassify(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxClassifyBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", tooLarge.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reading the request body: %v", err))
		return
	}
	request, err := DecodeClassifyRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	results, err := a.classify(r.Context(), request.Images)
	if err != nil {
		klog.FromContext(r.Context()).Error(err, "Classification failed")
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.ClassifyResponse{Results: results})
}

// classify runs joint inference on every image, a few at a time, keeping
// the request's order.
func (a *EdgeAPI) classify(ctx context.Context, images [][]float64) ([]api.ClassifyResult, error) {
	results := make([]api.ClassifyResult, len(images))
	errs := make([]error, len(images))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(a.parallelism, len(images)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for index := range next {
				results[index], errs[index] = a.classifyOne(ctx, images[index])
			}
		}()
	}
	for index := range images {
		next <- index
	}
	close(next)
	wg.Wait()
	for index, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("images[%d]: %w", index, err)
		}
	}
	return results, nil
}

func (a *EdgeAPI) classifyOne(ctx context.Context, image []float64) (api.ClassifyResult, error) {
	joint, err := a.edge.Infer(ctx, image)
	if err != nil {
		return api.ClassifyResult{}, err
	}
	edgePrediction, ok := joint.EdgeResult.(model.Prediction)
	if !ok {
		return api.ClassifyResult{}, fmt.Errorf("edge result is %T, want model.Prediction", joint.EdgeResult)
	}
	result := api.ClassifyResult{Label: edgePrediction.Label, Source: api.SourceEdge, Hard: joint.IsHard}
	switch {
	case !joint.IsHard:
	case joint.FellBack():
		result.Source = api.SourceEdgeFallback
	default:
		var cloudPrediction model.Prediction
		if err := json.Unmarshal(joint.CloudResult, &cloudPrediction); err != nil || cloudPrediction.Label < 0 || cloudPrediction.Label >= model.Classes {
			// The cloud answered something else than a model.Prediction;
			// the edge's own answer is the best left.
			klog.FromContext(ctx).Error(err, "Ignoring a malformed cloud answer", "answer", string(joint.CloudResult))
			result.Source = api.SourceEdgeFallback
			break
		}
		result.Label, result.Source = cloudPrediction.Label, api.SourceCloud
	}
	return result, nil
}

func (a *EdgeAPI) handleStats(w http.ResponseWriter, _ *http.Request) {
	stats := a.edge.Stats()
	writeJSON(w, http.StatusOK, api.Stats{
		InferenceNumber:   stats.InferenceNumber,
		HardExampleNumber: stats.HardExampleNumber,
		UploadCloudRatio:  stats.UploadCloudRatio(),
		Fallbacks:         stats.Fallbacks,
	})
}

func writeJSON(w http.ResponseWriter, status int, value any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The header is sent; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(value)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, api.Error{Error: message})
}
