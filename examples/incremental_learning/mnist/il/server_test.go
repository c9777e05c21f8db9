package il

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
	sdk "github.com/sedna-go/sedna/pkg/sdk/incrementallearning"
)

func savedModel(t *testing.T, dir string, seed uint64) string {
	t.Helper()
	m, err := model.New(Arch, seed)
	require.NoError(t, err)
	path := filepath.Join(dir, "m"+string(rune('0'+seed))+".smnistm")
	require.NoError(t, m.Save(path))
	return path
}

func post(t *testing.T, handler http.Handler, target, body string) (int, string) {
	t.Helper()
	recorder := httptest.NewRecorder()
	handler.ServeHTTP(recorder, httptest.NewRequest(http.MethodPost, target, strings.NewReader(body)))
	return recorder.Code, recorder.Body.String()
}

func imageJSON(value float64, n int) string {
	pixels := make([]float64, n)
	for i := range pixels {
		pixels[i] = value
	}
	encoded, _ := json.Marshal(pixels)
	return string(encoded)
}

func TestClassifyRejectsBadRequests(t *testing.T) {
	server := NewServer(nil, nil)
	require.NoError(t, server.Load(context.Background(), savedModel(t, t.TempDir(), 1)))
	good := imageJSON(0.5, model.Pixels)
	for name, tc := range map[string]struct {
		target, body, want string
	}{
		"not JSON":       {ClassifyPath, "images", "not JSON"},
		"unknown field":  {ClassifyPath, `{"images":[` + good + `],"x":1}`, "unknown field"},
		"trailing data":  {ClassifyPath, `{"images":[` + good + `]} {}`, "after the JSON object"},
		"no images":      {ClassifyPath, `{"images":[]}`, "missing or empty"},
		"missing images": {ClassifyPath, `{}`, "missing or empty"},
		"short image":    {ClassifyPath, `{"images":[` + good + `,` + imageJSON(0.5, 783) + `]}`, "images[1]: image has 783 pixels"},
		"pixel too big":  {ClassifyPath, `{"images":[` + imageJSON(1.5, model.Pixels) + `]}`, "images[0]: pixel 0 is 1.5"},
		"bad collect":    {ClassifyPath + "?collect=maybe", `{"images":[` + good + `]}`, "collect"},
		"too many":       {ClassifyPath, `{"images":[` + strings.Repeat(good+",", MaxImagesPerRequest) + good + `]}`, "at most 1000"},
	} {
		code, body := post(t, server, tc.target, tc.body)
		require.Equal(t, http.StatusBadRequest, code, name)
		require.Contains(t, body, tc.want, name)
	}
	code, _ := post(t, server, ClassifyPath, `{"images":[`+good+`]}`)
	require.Equal(t, http.StatusOK, code)
	recorder := httptest.NewRecorder()
	server.ServeHTTP(recorder, httptest.NewRequest(http.MethodGet, ClassifyPath, nil))
	require.Equal(t, http.StatusNotFound, recorder.Code)
	require.Contains(t, recorder.Body.String(), "use POST /classify")
}

func TestClassifyBodyLimit(t *testing.T) {
	server := NewServer(nil, nil)
	require.NoError(t, server.Load(context.Background(), savedModel(t, t.TempDir(), 1)))
	code, _ := post(t, server, ClassifyPath, `{"images":[[`+strings.Repeat("0,", MaxClassifyBodyBytes/2)+`0]]}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
}

func TestServerWithoutModelIsUnhealthy(t *testing.T) {
	server := NewServer(nil, nil)
	recorder := httptest.NewRecorder()
	server.ServeHTTP(recorder, httptest.NewRequest(http.MethodGet, HealthPath, nil))
	require.Equal(t, http.StatusServiceUnavailable, recorder.Code)
	code, body := post(t, server, ClassifyPath, `{"images":[`+imageJSON(0, model.Pixels)+`]}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no model loaded")
}

func TestClassifyFilesHardExamplesAndSwapsModels(t *testing.T) {
	dir := t.TempDir()
	hardDir := filepath.Join(dir, "hard")
	collector, err := sdk.NewHardExampleCollector(hardDir, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = collector.Close() })
	// Every answer is hard: the collector receives everything not sent with collect=false.
	server := NewServer(hem.Constant(true), collector)
	ctx := context.Background()
	first, second := savedModel(t, dir, 1), savedModel(t, dir, 2)
	require.NoError(t, server.Load(ctx, first))
	api := httptest.NewServer(server)
	t.Cleanup(api.Close)
	client := &Client{BaseURL: api.URL}

	pixels := make([]uint8, model.Pixels)
	for i := range pixels {
		pixels[i] = uint8(i % 251)
	}
	response, err := client.Classify(ctx, [][]float64{ToUnit(pixels), ToUnit(pixels)}, true)
	require.NoError(t, err)
	require.Len(t, response.Results, 2)
	require.Equal(t, 1, response.ModelVersion)
	for _, r := range response.Results {
		require.True(t, r.Hard)
		require.True(t, r.Collected)
		require.InDelta(t, 0.5, r.Confidence, 0.5)
	}
	_, err = client.Classify(ctx, [][]float64{ToUnit(pixels)}, false)
	require.NoError(t, err)

	index, err := os.ReadFile(filepath.Join(hardDir, "index.txt"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(index)), "\n")
	require.Len(t, lines, 2, "collect=false files nothing")
	fields := strings.Fields(lines[0])
	require.Len(t, fields, 2, "path and the model's guess")
	require.Equal(t, ".png", filepath.Ext(fields[0]))
	content, err := os.ReadFile(fields[0])
	require.NoError(t, err)
	decoded, err := DecodePNG(content)
	require.NoError(t, err)
	require.Equal(t, pixels, decoded)

	stats, err := client.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, Stats{ModelVersion: 1, ModelPath: first, ModelDigest: stats.ModelDigest, ModelLoaded: stats.ModelLoaded,
		PID: os.Getpid(), Inferences: 3, HardExamples: 3, Collected: 2}, stats)

	// A hot update swaps the model; a broken file leaves the previous one serving.
	require.NoError(t, server.Load(ctx, second))
	broken := filepath.Join(dir, "broken.smnistm")
	require.NoError(t, os.WriteFile(broken, []byte("junk"), 0o644))
	require.ErrorIs(t, server.Load(ctx, broken), model.ErrBadModelFile)
	after, err := client.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, after.ModelVersion)
	require.Equal(t, second, after.ModelPath)
	require.NotEqual(t, stats.ModelDigest, after.ModelDigest)
}

func TestResolveHotUpdatePath(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "model_config.json")
	require.NoError(t, os.WriteFile(filepath.Join(dir, ModelFile), nil, 0o644))
	existing := filepath.Join(t.TempDir(), "there.smnistm")
	require.NoError(t, os.WriteFile(existing, nil, 0o644))
	require.Equal(t, existing, ResolveHotUpdatePath(existing, config))
	require.Equal(t, filepath.Join(dir, ModelFile), ResolveHotUpdatePath("/model-hot-update/"+ModelFile, config))
	require.Equal(t, "/model-hot-update/x", ResolveHotUpdatePath("/model-hot-update/x", ""))
}

func FuzzDecodeClassifyRequest(f *testing.F) {
	f.Add([]byte(`{"images":[[0,1]]}`))
	f.Add([]byte(`{"images":[` + imageJSON(0.25, model.Pixels) + `]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		request, err := DecodeClassifyRequest(body)
		if err != nil {
			return
		}
		require.NotEmpty(t, request.Images)
		for _, image := range request.Images {
			require.NoError(t, model.CheckImage(image))
		}
	})
}
