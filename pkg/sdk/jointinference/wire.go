package jointinference

import "encoding/json"

// PredictRequest is the body of POST /{job}/predict. Upstream's edge also
// sends its keyword arguments (post_process, ...) as extra top-level keys;
// they carry Python callables' names and are ignored here.
type PredictRequest struct {
	Data json.RawMessage `json:"data"`
	// Callback names a post-processing step; null on the wire becomes nil.
	Callback *string `json:"callback,omitempty"`
}

// PredictResponse is the body of a successful predict answer.
type PredictResponse struct {
	Result any `json:"result"`
}

// ModelInfo is one entry of GET /{job}'s "infos".
type ModelInfo struct {
	Path string `json:"path"`
	Name string `json:"name"`
}

// InfoResponse is the body of GET /{job}.
type InfoResponse struct {
	Infos []ModelInfo `json:"infos"`
}

// ErrorResponse is the body of every non-2xx answer of the server.
type ErrorResponse struct {
	Error string `json:"error"`
}
