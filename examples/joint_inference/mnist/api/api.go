// Package api holds the wire types of the MNIST edge worker's application
// API (POST /classify, GET /stats), shared by the worker and the mnist-eval
// driver so the two cannot drift apart.
package api

// Paths of the edge worker's application API.
const (
	ClassifyPath = "/classify"
	StatsPath    = "/stats"
	HealthPath   = "/healthz"
)

// MaxImagesPerRequest bounds one /classify batch.
const MaxImagesPerRequest = 1000

// Where an answer came from.
const (
	// SourceEdge: the edge model was confident enough.
	SourceEdge = "edge"
	// SourceCloud: the sample was hard and the cloud model answered.
	SourceCloud = "cloud"
	// SourceEdgeFallback: the sample was hard but the cloud could not be
	// reached in time, so the edge model answered.
	SourceEdgeFallback = "edge-fallback"
)

// ClassifyRequest is the body of POST /classify: flat 784-value images
// (row-major 28x28, pixels in [0,1]).
type ClassifyRequest struct {
	Images [][]float64 `json:"images"`
}

// ClassifyResult is the answer for one image.
type ClassifyResult struct {
	Label  int    `json:"label"`
	Source string `json:"source"`
	Hard   bool   `json:"hard"`
}

// ClassifyResponse is the body of a successful POST /classify, one result
// per image in request order.
type ClassifyResponse struct {
	Results []ClassifyResult `json:"results"`
}

// Stats is the body of GET /stats: the edge's cumulative counters, as
// reported to the local controller, plus fallbacks.
type Stats struct {
	InferenceNumber   int64   `json:"inferenceNumber"`
	HardExampleNumber int64   `json:"hardExampleNumber"`
	UploadCloudRatio  float64 `json:"uploadCloudRatio"`
	Fallbacks         int64   `json:"fallbacks"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
