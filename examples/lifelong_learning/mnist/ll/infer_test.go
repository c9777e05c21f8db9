package ll

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
)

// Before an index is loaded /classify is 503 (the server is not ready), not a 400 blaming the
// client; a malformed body stays a 400.
func TestClassifyStatusesTellWhoseFaultItIs(t *testing.T) {
	server := NewInferServer(nil, filepath.Join(t.TempDir(), "index.json"), t.TempDir(), "", logr.Discard())
	image := "[" + strings.TrimSuffix(strings.Repeat("0,", 784), ",") + "]"
	recorder := httptest.NewRecorder()
	server.ServeHTTP(recorder, httptest.NewRequest(http.MethodPost, "/classify", strings.NewReader(`{"images":[`+image+`]}`)))
	require.Equal(t, http.StatusServiceUnavailable, recorder.Code, recorder.Body.String())
	recorder = httptest.NewRecorder()
	server.ServeHTTP(recorder, httptest.NewRequest(http.MethodPost, "/classify", strings.NewReader(`{"images":[[0]`)))
	require.Equal(t, http.StatusBadRequest, recorder.Code, recorder.Body.String())
}

// Unseen images are filed until MaxUnseenFiles wait for labelling, then no more.
func TestUnseenFilingIsCapped(t *testing.T) {
	unseen := t.TempDir()
	for i := range MaxUnseenFiles - 1 {
		require.NoError(t, os.WriteFile(filepath.Join(unseen, fmt.Sprintf("old-%d.png", i)), nil, 0o600))
	}
	server := NewInferServer(nil, filepath.Join(t.TempDir(), "index.json"), t.TempDir(), unseen, logr.Discard())
	image := func(v float64) []float64 {
		values := make([]float64, 784)
		values[0] = v
		return values
	}
	require.NoError(t, server.fileUnseen(image(0.5)))
	require.NoError(t, server.fileUnseen(image(0.5)), "the same image again is already filed")
	require.ErrorContains(t, server.fileUnseen(image(0.25)), "not filing more")
	entries, err := os.ReadDir(unseen)
	require.NoError(t, err)
	require.Len(t, entries, MaxUnseenFiles)
}
