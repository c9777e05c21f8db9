package kb

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// With MaxConcurrentWrites writes in flight, one more write is answered 503 at once (it does not
// queue, holding a connection and a scratch file), while reads are still served.
func TestWritesBeyondTheLimitAre503(t *testing.T) {
	kb := newTestKB(t, Options{Compat: true, MaxConcurrentWrites: 1})
	contentType, body := multipartBody(t, "file", "slow.bin", []byte("content"))
	reader, writer := io.Pipe()
	done := make(chan int)
	go func() {
		request := httptest.NewRequest(http.MethodPost, Prefix+RouteFileUpload, reader)
		request.Header.Set("Content-Type", contentType)
		recorder := httptest.NewRecorder()
		kb.handler.ServeHTTP(recorder, request)
		done <- recorder.Code
	}()
	_, err := writer.Write(body[:len(body)/2]) // returns once the handler reads: the slot is taken
	require.NoError(t, err)

	refused := kb.upload("", "other.bin", []byte("x"))
	require.Equal(t, http.StatusServiceUnavailable, refused.status, string(refused.body))
	require.Contains(t, refused.detail(t), "retry later")
	require.Equal(t, http.StatusOK, kb.do(http.MethodGet, "/healthz", "", "", nil).status)
	require.Equal(t, http.StatusOK, kb.query("", QueryRequest{Features: [][]float64{{0, 0}}}).status)

	require.NoError(t, writer.CloseWithError(errors.New("sender gone")))
	select {
	case status := <-done:
		require.Equal(t, http.StatusBadRequest, status)
	case <-time.After(30 * time.Second):
		t.Fatal("the cut-off upload was not answered")
	}
	// The slot is free again.
	require.Equal(t, http.StatusOK, kb.upload("", "other.bin", []byte(strings.Repeat("x", 10))).status)
}
