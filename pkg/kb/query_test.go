package kb

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tinyVectors is {"features":[[],[],…]} of about size bytes: each "[]," costs a slice header if
// decoded whole.
func tinyVectors(size int) []byte {
	var body bytes.Buffer
	body.WriteString(`{"features":[`)
	body.WriteString(strings.Repeat(`[],`, (size-20)/3))
	body.WriteString(`[]]}`)
	return body.Bytes()
}

// allocatedBy returns the bytes allocated while serving one request with body.
func allocatedBy(t *testing.T, handler http.Handler, body []byte) (int, uint64) {
	t.Helper()
	request := httptest.NewRequest(http.MethodPost, Prefix+RouteQuery, bytes.NewReader(body))
	recorder := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	handler.ServeHTTP(recorder, request)
	runtime.ReadMemStats(&after)
	return recorder.Code, after.TotalAlloc - before.TotalAlloc
}

// A 16 MB query of empty vectors once made the server allocate about 1 GB before it counted the
// vectors. It is now refused after reading a bounded prefix: without an index the body may be
// 64 KiB, with one the first vector of the wrong length stops the decoding, and a body of
// well-formed vectors stops at MaxQuerySamples+1.
func TestQueryAllocationIsBoundedWhateverTheBody(t *testing.T) {
	const bound = 16 << 20
	kb := newTestKB(t, Options{Compat: true})
	empty := tinyVectors(16 << 20)

	status, allocated := allocatedBy(t, kb.handler, empty)
	t.Logf("no index: status %d, allocated %d KiB", status, allocated>>10)
	require.Equal(t, http.StatusBadRequest, status, "more than MaxQuerySamples vectors")
	status, allocated = allocatedBy(t, kb.handler, []byte(`{"features":[[`+strings.Repeat("0,", 40<<10)+`0]]}`))
	t.Logf("no index, one 80 KiB vector: status %d, allocated %d KiB", status, allocated>>10)
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Less(t, allocated, uint64(bound))

	require.Equal(t, http.StatusOK, kb.update("", mustJSON(t, twoTaskIndex())).status)
	status, allocated = allocatedBy(t, kb.handler, empty)
	t.Logf("index of dimension 2, empty vectors: status %d, allocated %d KiB", status, allocated>>10)
	require.Equal(t, http.StatusBadRequest, status)
	require.Less(t, allocated, uint64(bound))

	var many bytes.Buffer
	many.WriteString(`{"features":[[0,0]`)
	many.WriteString(strings.Repeat(`,[0,0]`, 2*DefaultMaxQuerySample))
	many.WriteString(`]}`)
	status, allocated = allocatedBy(t, kb.handler, many.Bytes())
	t.Logf("%d vectors of dimension 2: status %d, allocated %d KiB", 2*DefaultMaxQuerySample+1, status, allocated>>10)
	require.Equal(t, http.StatusBadRequest, status)
	require.Less(t, allocated, uint64(bound))
}

func TestQueryBodyErrorsNameTheProblem(t *testing.T) {
	kb := newTestKB(t, Options{Compat: true, MaxQuerySamples: 2})
	require.Equal(t, http.StatusOK, kb.update("", mustJSON(t, twoTaskIndex())).status)
	for body, want := range map[string]string{
		`{"features":[[1,2],[1,2],[1,2]]}`:   `"features" holds more than 2 vectors`,
		`{"features":[[1]]}`:                 `features[0] has 1 values, the index's dimension is 2`,
		`{"features":[[1,"x"]]}`:             `features[0][1] is not a number`,
		`{"features":[[1,2]],"other":1}`:     `unknown field "other"`,
		`{"features":[[1,2]],"features":[]}`: `"features" appears twice`,
		`{"features":[[1,2]]} {}`:            `data after its object`,
		`{"features":{}}`:                    `must be an array of arrays`,
		`[]`:                                 `want "{"`,
	} {
		answer := kb.do(http.MethodPost, Prefix+RouteQuery, "", "application/json", []byte(body))
		require.Equal(t, http.StatusBadRequest, answer.status, body)
		require.Contains(t, answer.detail(t), want, body)
	}
}

// An index of 4 MB of empty centroids is refused at the first one, allocating a few copies of its
// bytes (the decoders' buffers), not a slice header per "[]," (whole decoding allocated about
// 64 times the input).
func TestIndexParsingAllocationIsBounded(t *testing.T) {
	var body bytes.Buffer
	body.WriteString(`{"format":"` + IndexFormat + `","featureSpace":"s","dimension":2,"tasks":[{"id":"a","radius":1,"model":{"url":"u"},"centroids":[`)
	body.WriteString(strings.Repeat(`[],`, (4<<20)/3))
	body.WriteString(`[]]}]}`)
	data := body.Bytes()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ParseIndex(data)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("4 MB index of empty centroids: allocated %d KiB: %v", allocated>>10, err)
	require.ErrorContains(t, err, "tasks[0].centroids[0] has 0 values")
	require.Less(t, allocated, uint64(10*len(data)), "at most a few copies of the input")
}
