package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"
)

// A flood of refused reports from the node network logs only the 1st, 2nd, 4th... refusal at
// default verbosity; the counter counts every one.
func TestRefusalsAreLoggedSampled(t *testing.T) {
	f := newFixture(t, Options{})
	var mu sync.Mutex
	logged := 0
	logger := funcr.New(func(_, args string) {
		if strings.Contains(args, "Refused a worker report") {
			mu.Lock()
			logged++
			mu.Unlock()
		}
	}, funcr.Options{})
	for range 100 {
		request := httptest.NewRequest(http.MethodPost, "/sedna/workers/edge-0/info", strings.NewReader(jiReport))
		request.RemoteAddr = "203.0.113.7:1"
		request = request.WithContext(klog.NewContext(request.Context(), logger))
		recorder := httptest.NewRecorder()
		f.server.ServeHTTP(recorder, request)
		require.Equal(t, http.StatusForbidden, recorder.Code)
	}
	require.Equal(t, 100.0, testutil.ToFloat64(f.server.refused.WithLabelValues(refusedUnknownSource)))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 7, logged, "refusals 1, 2, 4, 8, 16, 32 and 64")
}
