package jointinference

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoPredictor answers with what it was sent, so tests see the decoding.
var echoPredictor = PredictorFunc(func(_ context.Context, req PredictRequest) (any, error) {
	callback := "<nil>"
	if req.Callback != nil {
		callback = *req.Callback
	}
	if string(req.Data) == `"fail"` {
		return nil, errors.New("model crashed")
	}
	return map[string]any{"data": req.Data, "callback": callback}, nil
})

func TestServer(t *testing.T) {
	tests := map[string]struct {
		method, path, body string
		wantStatus         int
		wantBody           string
	}{
		"predict": {
			method: http.MethodPost, path: "/sedna/predict", body: `{"data":[[1,2],[3,4]],"callback":"draw"}`,
			wantStatus: 200, wantBody: `{"result":{"data":[[1,2],[3,4]],"callback":"draw"}}`,
		},
		"predict null callback and upstream kwargs": {
			method: http.MethodPost, path: "/sedna/predict", body: `{"data":"img","callback":null,"post_process":"nms"}`,
			wantStatus: 200, wantBody: `{"result":{"data":"img","callback":"<nil>"}}`,
		},
		"not json": {
			method: http.MethodPost, path: "/sedna/predict", body: `data=1`,
			wantStatus: 400, wantBody: `{"error":"request body is not a JSON object {\"data\":...}: invalid character 'd' looking for beginning of value"}`,
		},
		"no data": {
			method: http.MethodPost, path: "/sedna/predict", body: `{"callback":"x"}`,
			wantStatus: 400, wantBody: `{"error":"request body has no \"data\""}`,
		},
		"null data": {
			method: http.MethodPost, path: "/sedna/predict", body: `{"data":null}`,
			wantStatus: 400, wantBody: `{"error":"request body has no \"data\""}`,
		},
		"too large": {
			method: http.MethodPost, path: "/sedna/predict", body: `{"data":"` + strings.Repeat("x", 200) + `"}`,
			wantStatus: 413, wantBody: `{"error":"request body exceeds the limit of 128 bytes"}`,
		},
		"predictor fails": {
			method: http.MethodPost, path: "/sedna/predict", body: `{"data":"fail"}`,
			wantStatus: 500, wantBody: `{"error":"predicting: model crashed"}`,
		},
		"infos": {
			method: http.MethodGet, path: "/sedna",
			wantStatus: 200, wantBody: `{"infos":[{"path":"/models/big.pb","name":"big"}]}`,
		},
		"other job": {
			method: http.MethodPost, path: "/other/predict", body: `{"data":1}`,
			wantStatus: 404, wantBody: `{"error":"no endpoint POST /other/predict: use POST /sedna/predict or GET /sedna"}`,
		},
		"GET predict": {
			method: http.MethodGet, path: "/sedna/predict",
			wantStatus: 404, wantBody: `{"error":"no endpoint GET /sedna/predict: use POST /sedna/predict or GET /sedna"}`,
		},
	}
	server, err := NewServer(ServerOptions{
		Job: "sedna", Predictor: echoPredictor, MaxBodyBytes: 128,
		Infos: []ModelInfo{{Path: "/models/big.pb", Name: "big"}},
	})
	require.NoError(t, err)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			recorder := httptest.NewRecorder()
			server.ServeHTTP(recorder, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			require.Equal(t, tc.wantStatus, recorder.Code)
			require.Equal(t, "application/json", recorder.Header().Get("Content-Type"))
			require.JSONEq(t, tc.wantBody, recorder.Body.String())
		})
	}
}

func TestServerUnencodableResult(t *testing.T) {
	server, err := NewServer(ServerOptions{Job: "sedna", Predictor: PredictorFunc(func(context.Context, PredictRequest) (any, error) {
		return map[string]any{"f": func() {}}, nil
	})})
	require.NoError(t, err)
	recorder := httptest.NewRecorder()
	server.ServeHTTP(recorder, httptest.NewRequest(http.MethodPost, "/sedna/predict", strings.NewReader(`{"data":1}`)))
	require.Equal(t, http.StatusInternalServerError, recorder.Code)
	require.Contains(t, recorder.Body.String(), "encoding the prediction")
}

func TestNewServerValidates(t *testing.T) {
	_, err := NewServer(ServerOptions{Job: "", Predictor: echoPredictor})
	require.ErrorContains(t, err, "job name")
	_, err = NewServer(ServerOptions{Job: "a/b", Predictor: echoPredictor})
	require.ErrorContains(t, err, `job name "a/b"`)
	_, err = NewServer(ServerOptions{Job: "sedna"})
	require.ErrorContains(t, err, "Predictor is required")
}

func TestServeStopsWithContext(t *testing.T) {
	server, err := NewServer(ServerOptions{Job: "sedna", Predictor: echoPredictor})
	require.NoError(t, err)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, listener) }()

	resp, err := http.Post("http://"+listener.Addr().String()+"/sedna/predict", "application/json", strings.NewReader(`{"data":[1]}`))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	var decoded PredictResponse
	require.NoError(t, json.Unmarshal(body, &decoded))
	require.Equal(t, map[string]any{"data": []any{1.0}, "callback": "<nil>"}, decoded.Result)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
}
