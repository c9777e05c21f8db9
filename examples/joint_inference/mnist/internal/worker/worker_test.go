package worker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/api"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
	"github.com/sedna-go/sedna/pkg/sdk/jointinference"
)

func saveModel(t *testing.T, dir, name string, arch model.Arch, seed uint64) (*model.Model, string) {
	t.Helper()
	m, err := model.New(arch, seed)
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, m.Save(path))
	return m, path
}

func testImages(n int) [][]float64 {
	images := make([][]float64, n)
	for i := range images {
		images[i] = make([]float64, model.Pixels)
		for p := range images[i] {
			images[i][p] = float64((p*(i+3))%17) / 16
		}
	}
	return images
}

func TestWatcherReloadsAndKeepsOldModelOnCorruptFile(t *testing.T) {
	dir := t.TempDir()
	_, path := saveModel(t, dir, "m.model", model.EdgeArch, 1)
	watcher, err := NewWatcher(path)
	require.NoError(t, err)
	require.Equal(t, model.EdgeArch, watcher.Current().Arch())

	changed, err := watcher.Reload()
	require.NoError(t, err)
	require.False(t, changed, "an unchanged file is not reloaded")

	replacement, err := model.New(model.CloudArch, 2)
	require.NoError(t, err)
	require.NoError(t, replacement.Save(path))
	changed, err = watcher.Reload()
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, model.CloudArch, watcher.Current().Arch())

	require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o600))
	_, err = watcher.Reload()
	require.ErrorIs(t, err, model.ErrBadModelFile)
	require.Equal(t, model.CloudArch, watcher.Current().Arch(), "a bad file keeps the previous model")

	_, err = NewWatcher(path)
	require.Error(t, err, "the first load must succeed")
	_, err = NewWatcher("")
	require.ErrorContains(t, err, "MODEL_URL")
}

// newJointEdge runs a real cloud server and returns an edge API in front of
// it, with the models it uses.
func newJointEdge(t *testing.T, miner hem.Miner) (edgeAPI http.Handler, edgeModel, cloudModel *model.Model, cloud *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	edgeModel, edgePath := saveModel(t, dir, "edge.model", model.EdgeArch, 1)
	cloudModel, cloudPath := saveModel(t, dir, "cloud.model", model.Arch{Pool: 2, Hidden: 16}, 2)
	cloudModels, err := NewWatcher(cloudPath)
	require.NoError(t, err)
	server, err := jointinference.NewServer(jointinference.ServerOptions{Job: "sedna", Predictor: CloudPredictor(cloudModels)})
	require.NoError(t, err)
	cloud = httptest.NewServer(server)
	t.Cleanup(cloud.Close)
	edgeModels, err := NewWatcher(edgePath)
	require.NoError(t, err)
	edge, err := jointinference.NewEdge(jointinference.EdgeOptions{
		Job: "sedna", CloudURL: cloud.URL, Model: EdgeModel(edgeModels), Miner: miner, CloudDeadline: time.Second,
	})
	require.NoError(t, err)
	return NewEdgeAPI(edge, 3), edgeModel, cloudModel, cloud
}

func classify(t *testing.T, handler http.Handler, body string) (*httptest.ResponseRecorder, api.ClassifyResponse) {
	t.Helper()
	recorder := httptest.NewRecorder()
	handler.ServeHTTP(recorder, httptest.NewRequest(http.MethodPost, api.ClassifyPath, strings.NewReader(body)))
	var response api.ClassifyResponse
	if recorder.Code == http.StatusOK {
		require.NoError(t, json.Unmarshal(recorder.Body.Bytes(), &response))
	}
	return recorder, response
}

func stats(t *testing.T, handler http.Handler) api.Stats {
	t.Helper()
	recorder := httptest.NewRecorder()
	handler.ServeHTTP(recorder, httptest.NewRequest(http.MethodGet, api.StatsPath, nil))
	require.Equal(t, http.StatusOK, recorder.Code)
	var got api.Stats
	require.NoError(t, json.Unmarshal(recorder.Body.Bytes(), &got))
	return got
}

func TestClassifySources(t *testing.T) {
	images := testImages(7)
	body, err := json.Marshal(api.ClassifyRequest{Images: images})
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		miner      hem.Miner
		stopCloud  bool
		wantSource string
		wantStats  api.Stats
	}{
		"easy stays on the edge": {hem.Constant(false), false, api.SourceEdge, api.Stats{InferenceNumber: 7}},
		"hard goes to the cloud": {hem.Constant(true), false, api.SourceCloud, api.Stats{InferenceNumber: 7, HardExampleNumber: 7, UploadCloudRatio: 1}},
		"cloud down falls back":  {hem.Constant(true), true, api.SourceEdgeFallback, api.Stats{InferenceNumber: 7, HardExampleNumber: 7, UploadCloudRatio: 1, Fallbacks: 7}},
	} {
		t.Run(name, func(t *testing.T) {
			handler, edgeModel, cloudModel, cloud := newJointEdge(t, tc.miner)
			if tc.stopCloud {
				cloud.Close()
			}
			recorder, response := classify(t, handler, string(body))
			require.Equal(t, http.StatusOK, recorder.Code, recorder.Body.String())
			require.Len(t, response.Results, len(images))
			answering := edgeModel
			if tc.wantSource == api.SourceCloud {
				answering = cloudModel
			}
			for i, result := range response.Results {
				want, err := answering.Predict(images[i])
				require.NoError(t, err)
				require.Equal(t, api.ClassifyResult{Label: want.Label, Source: tc.wantSource, Hard: tc.miner == hem.Constant(true)}, result, "image %d", i)
			}
			require.Equal(t, tc.wantStats, stats(t, handler))
		})
	}
}

func TestClassifyRejectsBadRequests(t *testing.T) {
	handler, _, _, _ := newJointEdge(t, hem.Constant(false))
	good, err := json.Marshal(testImages(1)[0])
	require.NoError(t, err)
	tooMany, err := json.Marshal(api.ClassifyRequest{Images: make([][]float64, api.MaxImagesPerRequest+1)})
	require.NoError(t, err)
	outOfRange := strings.Replace(string(good), "0,", "1.5,", 1)

	for name, tc := range map[string]struct {
		body, want string
		code       int
	}{
		"not json":        {"images", "not JSON", http.StatusBadRequest},
		"nan":             {`{"images":[[NaN]]}`, "no NaN", http.StatusBadRequest},
		"unknown field":   {`{"image":[]}`, `unknown field "image"`, http.StatusBadRequest},
		"no images":       {`{"images":[]}`, `"images" is missing or empty`, http.StatusBadRequest},
		"wrong length":    {`{"images":[` + string(good) + `,[0.5,0.5]]}`, "images[1]: image has 2 pixels, want 784", http.StatusBadRequest},
		"out of range":    {`{"images":[` + outOfRange + `]}`, "images[0]: pixel 0 is 1.5", http.StatusBadRequest},
		"trailing data":   {`{"images":[` + string(good) + `]} {}`, "after the JSON object", http.StatusBadRequest},
		"too many images": {string(tooMany), "at most 1000", http.StatusBadRequest},
		"too large":       {`{"images":[[` + strings.Repeat("0.5,", MaxClassifyBodyBytes/4) + `0]]}`, "exceeds the limit", http.StatusRequestEntityTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			recorder, _ := classify(t, handler, tc.body)
			require.Equal(t, tc.code, recorder.Code, recorder.Body.String())
			var answer api.Error
			require.NoError(t, json.Unmarshal(recorder.Body.Bytes(), &answer))
			require.Contains(t, answer.Error, tc.want)
		})
	}
	require.Equal(t, api.Stats{}, stats(t, handler), "rejected requests run no inference")
}

func TestCloudPredictorAnswersOneImage(t *testing.T) {
	dir := t.TempDir()
	m, path := saveModel(t, dir, "cloud.model", model.Arch{Pool: 4, Hidden: 8}, 5)
	watcher, err := NewWatcher(path)
	require.NoError(t, err)
	predictor := CloudPredictor(watcher)
	image := testImages(1)[0]
	data, err := json.Marshal(image)
	require.NoError(t, err)
	got, err := predictor.Predict(context.Background(), jointinference.PredictRequest{Data: data})
	require.NoError(t, err)
	want, err := m.Predict(image)
	require.NoError(t, err)
	require.Equal(t, want, got)

	_, err = predictor.Predict(context.Background(), jointinference.PredictRequest{Data: json.RawMessage(`[[0.1]]`)})
	require.ErrorContains(t, err, "flat array of 784")
	_, err = predictor.Predict(context.Background(), jointinference.PredictRequest{Data: json.RawMessage(`[0.1]`)})
	require.ErrorContains(t, err, "image has 1 pixels")
}

func FuzzDecodeClassifyRequest(f *testing.F) {
	good, err := json.Marshal(api.ClassifyRequest{Images: testImages(2)})
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"images":[[0.5]]}`))
	f.Add([]byte(`{"images":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		request, err := DecodeClassifyRequest(body)
		if err != nil {
			return
		}
		require.NotEmpty(t, request.Images)
		require.LessOrEqual(t, len(request.Images), api.MaxImagesPerRequest)
		for _, image := range request.Images {
			require.NoError(t, model.CheckImage(image))
		}
	})
}
