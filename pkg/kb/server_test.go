package kb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
)

// testKB is a server on a data directory, restartable on the same directory.
type testKB struct {
	t       *testing.T
	dir     string
	opts    Options
	store   *Store
	files   FileStore
	handler http.Handler
}

func newTestKB(t *testing.T, opts Options) *testKB {
	kb := &testKB{t: t, dir: t.TempDir(), opts: opts}
	kb.start(nil)
	return kb
}

func (kb *testKB) start(files FileStore) {
	t := kb.t
	if files == nil {
		dirStore, err := NewDirStore(filepath.Join(kb.dir, "files"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = dirStore.Close() })
		files = dirStore
	}
	store, err := OpenStore(kb.dir, files)
	require.NoError(t, err)
	kb.store, kb.files = store, files
	opts := kb.opts
	opts.Store, opts.ScratchDir, opts.Logger = store, t.TempDir(), logr.Discard()
	server, err := NewServer(opts)
	require.NoError(t, err)
	kb.handler = server
}

func (kb *testKB) restart() {
	require.NoError(kb.t, kb.store.Close())
	kb.start(kb.files)
}

type answer struct {
	status int
	body   []byte
}

func (a answer) jsonString(t *testing.T) string {
	t.Helper()
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	var value string
	require.NoError(t, json.Unmarshal(a.body, &value), string(a.body))
	return value
}

func (a answer) detail(t *testing.T) string {
	t.Helper()
	var value struct{ Detail string }
	require.NoError(t, json.Unmarshal(a.body, &value), string(a.body))
	require.NotEmpty(t, value.Detail)
	return value.Detail
}

func (kb *testKB) do(method, target, token, contentType string, body []byte) answer {
	request := httptest.NewRequest(method, target, bytes.NewReader(body))
	if contentType != "" {
		request.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		request.Header.Set("Authorization", "Bearer "+token)
	}
	recorder := httptest.NewRecorder()
	kb.handler.ServeHTTP(recorder, request)
	return answer{status: recorder.Code, body: recorder.Body.Bytes()}
}

// multipartBody builds a form with one file field whose raw file name is written as given.
func multipartBody(t *testing.T, field, fileName string, content []byte) (string, []byte) {
	var buffer bytes.Buffer
	writer := multipart.NewWriter(&buffer)
	header := textproto.MIMEHeader{}
	header.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, fileName))
	header.Set("Content-Type", "application/octet-stream")
	part, err := writer.CreatePart(header)
	require.NoError(t, err)
	_, err = part.Write(content)
	require.NoError(t, err)
	require.NoError(t, writer.Close())
	return writer.FormDataContentType(), buffer.Bytes()
}

func (kb *testKB) upload(token, fileName string, content []byte) answer {
	contentType, body := multipartBody(kb.t, "file", fileName, content)
	return kb.do(http.MethodPost, Prefix+RouteFileUpload, token, contentType, body)
}

func (kb *testKB) update(token string, index []byte) answer {
	contentType, body := multipartBody(kb.t, "task", "index.pkl", index)
	return kb.do(http.MethodPost, Prefix+RouteUpdate, token, contentType, body)
}

func (kb *testKB) query(token string, request QueryRequest) answer {
	body, err := json.Marshal(request)
	require.NoError(kb.t, err)
	return kb.do(http.MethodPost, Prefix+RouteQuery, token, "application/json", body)
}

func (kb *testKB) download(token, relative string) answer {
	return kb.do(http.MethodGet, Prefix+relative, token, "", nil)
}

func twoTaskIndex() Index {
	return Index{
		Format: IndexFormat, FeatureSpace: "test-2d", Dimension: 2,
		Tasks: []Task{
			{ID: "left", Attributes: map[string]string{"side": "left"}, Centroids: [][]float64{{-10, 0}, {-10, 2}}, Radius: 1.5,
				Model: Model{URL: "/file/download?files=left.model&name=left.model", Format: "smnistm", Metrics: map[string]float64{"accuracy": 0.9}, Classes: []string{"a", "b"}}, NumberOfTrainSamples: 100},
			{ID: "right", Centroids: [][]float64{{10, 0}}, Radius: 1,
				Model: Model{URL: "s3://models/right.model", Metrics: map[string]float64{"accuracy": 0.8}}},
		},
	}
}

func mustJSON(t *testing.T, value any) []byte {
	data, err := json.Marshal(value)
	require.NoError(t, err)
	return data
}

func TestUpstreamRoutesAnswerUpstreamShapes(t *testing.T) {
	kb := newTestKB(t, Options{Compat: true})

	// file/upload answers the relative download path as a JSON string; download serves it back.
	model := []byte("model bytes \x00\x01")
	path := kb.upload("", "task-0.model", model).jsonString(t)
	require.Equal(t, "/file/download?files=task-0.model&name=task-0.model", path)
	got := kb.download("", path)
	require.Equal(t, http.StatusOK, got.status)
	require.Equal(t, model, got.body)

	// update stores upstream's joblib index opaquely as index.pkl and serves it unchanged.
	pickle := []byte("\x80\x04\x95joblib pickle with seen_task and unseen_task")
	path = kb.update("", pickle).jsonString(t)
	require.Equal(t, "/file/download?files=index.pkl&name=index.pkl", path)
	require.Equal(t, pickle, kb.download("", path).body)

	// update/status takes {"status","tasks"} and answers the index's download path.
	status := kb.do(http.MethodPost, Prefix+RouteUpdateStatus, "", "application/json", []byte(`{"status":1,"tasks":"task-0, task-1"}`))
	require.Equal(t, path, status.jsonString(t))
	record, found, err := kb.store.TaskStatus("task-1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, 1, record.Status)

	// query cannot read a pickle and says so.
	refused := kb.query("", QueryRequest{Features: [][]float64{{0, 0}}})
	require.Equal(t, http.StatusConflict, refused.status)
	require.Contains(t, refused.detail(t), "index.pkl")
}

func TestQueryAnswersTaskAndModelOrUnseen(t *testing.T) {
	kb := newTestKB(t, Options{Compat: true})
	// Before any index every sample is of an unseen task.
	var empty QueryResponse
	answer := kb.query("", QueryRequest{Features: [][]float64{{1, 2}}})
	require.Equal(t, http.StatusOK, answer.status, string(answer.body))
	require.NoError(t, json.Unmarshal(answer.body, &empty))
	require.True(t, empty.Results[0].Unseen)

	index := twoTaskIndex()
	require.Equal(t, "/file/download?files=index.json&name=index.json", kb.update("", mustJSON(t, index)).jsonString(t))

	answer = kb.query("", QueryRequest{FeatureSpace: "test-2d", Features: [][]float64{{-10.5, 1.9}, {10.2, 0.5}, {0, 0}, {10, 1.5}}})
	require.Equal(t, http.StatusOK, answer.status, string(answer.body))
	var response QueryResponse
	require.NoError(t, json.Unmarshal(answer.body, &response))
	require.Len(t, response.Results, 4)
	require.Equal(t, "left", response.Results[0].Task)
	require.Equal(t, index.Tasks[0].Model.URL, response.Results[0].Model.URL)
	require.InDelta(t, math.Sqrt(0.5*0.5+0.1*0.1)/1.5, response.Results[0].Score, 1e-9) // distance to (-10,2) over the radius
	require.Equal(t, "right", response.Results[1].Task)
	require.Equal(t, "s3://models/right.model", response.Results[1].Model.URL)
	require.True(t, response.Results[2].Unseen, "the origin is 10 away from every task")
	require.Empty(t, response.Results[2].Task)
	require.Nil(t, response.Results[2].Model)
	require.True(t, response.Results[3].Unseen, "1.5 from right's centroid is outside its radius 1")
	require.Equal(t, "right", response.Results[3].Nearest)
	require.InDelta(t, 1.5, response.Results[3].Score, 1e-9)
	require.Equal(t, "/file/download?files=index.json&name=index.json", response.Index)

	for name, tc := range map[string]struct {
		request QueryRequest
		want    string
	}{
		"wrong dimension":     {QueryRequest{Features: [][]float64{{1, 2}, {1, 2, 3}}}, "features[1] has more than 2 values, the index's dimension is 2"},
		"other feature space": {QueryRequest{FeatureSpace: "pixels", Features: [][]float64{{1, 2}}}, `featureSpace "pixels" differs`},
		"no features":         {QueryRequest{}, `"features" holds 0 vectors`},
	} {
		t.Run(name, func(t *testing.T) {
			refused := kb.query("", tc.request)
			require.Equal(t, http.StatusBadRequest, refused.status)
			require.Contains(t, refused.detail(t), tc.want)
		})
	}
}

func TestMalformedIndexIsRefusedNamingTheProblem(t *testing.T) {
	kb := newTestKB(t, Options{Compat: true})
	require.Equal(t, http.StatusOK, kb.update("", mustJSON(t, twoTaskIndex())).status)
	for name, tc := range map[string]struct {
		mutate func(*Index)
		raw    string
		want   string
	}{
		"not JSON":             {raw: `{"format": `, want: "not valid JSON"},
		"unknown field":        {raw: `{"format":"sedna-kb-index/v1","tasks":[],"extra":1}`, want: `unknown field "extra"`},
		"wrong format":         {mutate: func(x *Index) { x.Format = "v0" }, want: `index format is "v0"`},
		"no feature space":     {mutate: func(x *Index) { x.FeatureSpace = "" }, want: "featureSpace is empty"},
		"centroid too short":   {mutate: func(x *Index) { x.Tasks[1].Centroids[0] = []float64{1} }, want: `tasks[1].centroids[0] has 1 values, the index's dimension is 2`},
		"no centroids":         {mutate: func(x *Index) { x.Tasks[0].Centroids = nil }, want: `task "left": 0 centroids`},
		"zero radius":          {mutate: func(x *Index) { x.Tasks[0].Radius = 0 }, want: `task "left": radius 0`},
		"duplicate task":       {mutate: func(x *Index) { x.Tasks[1].ID = "left" }, want: `tasks[1].id "left" appears twice`},
		"task id with a slash": {mutate: func(x *Index) { x.Tasks[0].ID = "../x" }, want: `tasks[0].id "../x"`},
		"no model":             {mutate: func(x *Index) { x.Tasks[1].Model.URL = "" }, want: `task "right": model.url is empty`},
	} {
		t.Run(name, func(t *testing.T) {
			data := []byte(tc.raw)
			if tc.mutate != nil {
				index := twoTaskIndex()
				tc.mutate(&index)
				data = mustJSON(t, index)
			}
			refused := kb.update("", data)
			require.Equal(t, http.StatusBadRequest, refused.status)
			require.Contains(t, refused.detail(t), tc.want)
		})
	}
	// The good index is still the one answering.
	index, file := kb.store.Index()
	require.Equal(t, JSONIndexFile, file)
	require.Equal(t, []string{"left", "right"}, index.TaskIDs())
}

func TestPathTraversalIsRefused(t *testing.T) {
	kb := newTestKB(t, Options{Compat: true})
	secret := filepath.Join(kb.dir, "outside.txt")
	require.NoError(t, os.WriteFile(secret, []byte("not yours"), 0o600))
	for _, name := range []string{"../outside.txt", "../../etc/passwd", "a/b", `a\b`, ".hidden", "..", "", "/etc/passwd", "x\x00y"} {
		t.Run("upload "+name, func(t *testing.T) {
			refused := kb.upload("", name, []byte("evil"))
			require.Equal(t, http.StatusBadRequest, refused.status, string(refused.body))
			require.Contains(t, refused.detail(t), "file name refused")
		})
		t.Run("download "+name, func(t *testing.T) {
			refused := kb.download("", "/file/download?files="+urlEscape(name)+"&name=x")
			require.Equal(t, http.StatusBadRequest, refused.status, string(refused.body))
		})
	}
	content, err := os.ReadFile(secret)
	require.NoError(t, err)
	require.Equal(t, "not yours", string(content))
	// The database next to the files is not a file of the store either.
	require.Equal(t, http.StatusNotFound, kb.download("", "/file/download?files=kb.db").status)
	// A symlink planted in the file directory does not lead out of it.
	require.NoError(t, os.Symlink(secret, filepath.Join(kb.dir, "files", "link")))
	require.Equal(t, http.StatusNotFound, kb.download("", "/file/download?files=link").status)
	// Nor may an upload overwrite the JSON index outside update, which validates it.
	refused := kb.upload("", JSONIndexFile, []byte("{}"))
	require.Equal(t, http.StatusBadRequest, refused.status)
	require.Contains(t, refused.detail(t), "use /knowledgebase/update")
}

func urlEscape(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "\x00", "%00", "\\", "%5C", "/", "%2F").Replace(s)
}

func TestSizeLimits(t *testing.T) {
	kb := newTestKB(t, Options{Compat: true, MaxFileBytes: 1000, MaxIndexBytes: 500})
	require.Equal(t, http.StatusOK, kb.upload("", "fits.bin", bytes.Repeat([]byte{1}, 1000)).status)
	refused := kb.upload("", "big.bin", bytes.Repeat([]byte{1}, 1001))
	require.Equal(t, http.StatusRequestEntityTooLarge, refused.status)
	require.Contains(t, refused.detail(t), "larger than 1000 bytes")
	require.Equal(t, http.StatusNotFound, kb.download("", "/file/download?files=big.bin").status, "nothing of a refused upload is kept")
	// Far larger than the limit: the body limit stops it before the part is read to its end.
	require.Equal(t, http.StatusRequestEntityTooLarge, kb.upload("", "huge.bin", bytes.Repeat([]byte{1}, 200_000)).status)

	refused = kb.update("", bytes.Repeat([]byte{0x80}, 501))
	require.Equal(t, http.StatusRequestEntityTooLarge, refused.status)
	require.Contains(t, refused.detail(t), "larger than 500 bytes")
	_, file := kb.store.Index()
	require.Empty(t, file)

	refused = kb.do(http.MethodPost, Prefix+RouteUpdateStatus, "", "application/json", []byte(`{"status":1,"tasks":"`+strings.Repeat("a", 70_000)+`"}`))
	require.Equal(t, http.StatusRequestEntityTooLarge, refused.status)
}

func TestEverythingSurvivesARestart(t *testing.T) {
	kb := newTestKB(t, Options{Compat: true})
	model := []byte("the model")
	require.Equal(t, http.StatusOK, kb.upload("", "left.model", model).status)
	require.Equal(t, http.StatusOK, kb.update("", mustJSON(t, twoTaskIndex())).status)
	require.Equal(t, http.StatusOK, kb.do(http.MethodPost, Prefix+RouteUpdateStatus, "", "application/json", []byte(`{"status":1,"tasks":"left"}`)).status)

	kb.restart()

	require.Equal(t, model, kb.download("", "/file/download?files=left.model").body)
	index, file := kb.store.Index()
	require.Equal(t, JSONIndexFile, file)
	require.Equal(t, 1, index.Tasks[0].Status, "update/status survives")
	require.Equal(t, 0, index.Tasks[1].Status)
	var response QueryResponse
	answer := kb.query("", QueryRequest{Features: [][]float64{{-10, 0.1}}})
	require.NoError(t, json.Unmarshal(answer.body, &response))
	require.Equal(t, "left", response.Results[0].Task)
	record, found, err := kb.store.File("left.model")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, int64(len(model)), record.Size)

	// A new index keeps the statuses its tasks were given.
	require.Equal(t, http.StatusOK, kb.update("", mustJSON(t, twoTaskIndex())).status)
	index, _ = kb.store.Index()
	require.Equal(t, 1, index.Tasks[0].Status)

	// An opaque index replaces the JSON one, and that too survives.
	require.Equal(t, http.StatusOK, kb.update("", []byte("\x80pickle")).status)
	kb.restart()
	index, file = kb.store.Index()
	require.Nil(t, index)
	require.Equal(t, OpaqueIndexFile, file)
}

func TestWhoMayCallWhat(t *testing.T) {
	const write, read = "write-token", "read-token"
	index := mustJSON(t, twoTaskIndex())
	for name, tc := range map[string]struct {
		compat    bool
		token     string
		wantWrite int
		wantRead  int
	}{
		"write token":                       {token: write, wantWrite: http.StatusOK, wantRead: http.StatusOK},
		"read token":                        {token: read, wantWrite: http.StatusForbidden, wantRead: http.StatusOK},
		"anonymous":                         {wantWrite: http.StatusUnauthorized, wantRead: http.StatusUnauthorized},
		"other token":                       {token: "guess", wantWrite: http.StatusForbidden, wantRead: http.StatusForbidden},
		"anonymous in compatibility mode":   {compat: true, wantWrite: http.StatusOK, wantRead: http.StatusOK},
		"other token in compatibility mode": {compat: true, token: "guess", wantWrite: http.StatusForbidden, wantRead: http.StatusForbidden},
	} {
		t.Run(name, func(t *testing.T) {
			kb := newTestKB(t, Options{WriteToken: write, ReadToken: read, Compat: tc.compat})
			// Arrange a file and an index with the write token.
			require.Equal(t, http.StatusOK, kb.upload(write, "seed.bin", []byte("seed")).status)
			require.Equal(t, http.StatusOK, kb.update(write, index).status)

			require.Equal(t, tc.wantWrite, kb.upload(tc.token, "new.bin", []byte("x")).status)
			require.Equal(t, tc.wantWrite, kb.update(tc.token, index).status)
			require.Equal(t, tc.wantWrite, kb.do(http.MethodPost, Prefix+RouteUpdateStatus, tc.token, "application/json", []byte(`{"status":1,"tasks":"left"}`)).status)
			require.Equal(t, tc.wantRead, kb.query(tc.token, QueryRequest{Features: [][]float64{{0, 0}}}).status)
			require.Equal(t, tc.wantRead, kb.download(tc.token, "/file/download?files=seed.bin").status)
			if tc.wantWrite != http.StatusOK {
				require.Equal(t, http.StatusNotFound, kb.download(write, "/file/download?files=new.bin").status, "a refused upload stores nothing")
			}
		})
	}
	// A read token alone would leave writes open; no token without compatibility mode admits nobody.
	for _, opts := range []Options{{ReadToken: read, Compat: true}, {}, {WriteToken: write, ReadToken: write}} {
		store, err := OpenStore(t.TempDir(), nil)
		require.NoError(t, err)
		opts.Store = store
		_, err = NewServer(opts)
		require.Error(t, err)
		require.NoError(t, store.Close())
	}
}

func TestDirStoreReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	files, err := NewDirStore(dir)
	require.NoError(t, err)
	defer func() { require.NoError(t, files.Close()) }()
	ctx := context.Background()
	require.NoError(t, files.Put(ctx, "a", strings.NewReader("first"), 5))
	// A short write fails and leaves the old content.
	require.ErrorContains(t, files.Put(ctx, "a", strings.NewReader("sec"), 6), "got 3 bytes, want 6")
	reader, size, err := files.Open(ctx, "a")
	require.NoError(t, err)
	content, err := io.ReadAll(reader)
	require.NoError(t, err)
	require.NoError(t, reader.Close())
	require.Equal(t, "first", string(content))
	require.Equal(t, int64(5), size)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
	_, _, err = files.Open(ctx, "missing")
	require.ErrorIs(t, err, ErrFileNotFound)
}
