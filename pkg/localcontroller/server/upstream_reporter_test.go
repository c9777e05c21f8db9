package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

// upstreamReporter behaves as upstream's Python worker library reports to its LC: each report is
// POSTed as JSON with no credentials; only HTTP 200 is success (and its JSON answer is parsed);
// anything else is tried again, 5 tries in all, interval apart; when the fifth fails, the
// exception ends the reporter thread, which never reports again.
type upstreamReporter struct {
	endpoint string
	interval time.Duration
	client   *http.Client
	dead     bool
	requests int
}

const upstreamTries = 5

func newUpstreamReporter(lcServer, worker string, interval time.Duration) *upstreamReporter {
	return &upstreamReporter{
		endpoint: fmt.Sprintf("%s/sedna/workers/%s/info", lcServer, worker),
		interval: interval,
		client:   &http.Client{Timeout: 5 * time.Second},
	}
}

// report sends one report as the reporter thread would; it fails at once when the thread is dead.
func (u *upstreamReporter) report(message string) (response, error) {
	if u.dead {
		return response{}, fmt.Errorf("the reporter thread died and reports nothing any more")
	}
	var lastErr error
	for try := 1; try <= upstreamTries; try++ {
		if try > 1 {
			time.Sleep(u.interval)
		}
		u.requests++
		answer, err := u.post(message)
		if err == nil {
			return answer, nil
		}
		lastErr = err
	}
	u.dead = true
	return response{}, fmt.Errorf("%d tries failed, the reporter thread dies: %w", upstreamTries, lastErr)
}

func (u *upstreamReporter) post(message string) (response, error) {
	resp, err := u.client.Post(u.endpoint, "application/json", strings.NewReader(message))
	if err != nil {
		return response{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return response{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	var answer response
	if err := json.Unmarshal(body, &answer); err != nil {
		return response{}, fmt.Errorf("parsing the answer %q: %w", body, err)
	}
	return answer, nil
}

// serveOnLoopback serves the fixture's API on 127.0.0.1 with ns/ji's worker edge-0 published at
// 127.0.0.1 (the peer address of a loopback client), and returns its base URL.
func serveOnLoopback(t *testing.T, f *fixture) string {
	t.Helper()
	_, err := f.st.PutResource(store.Resource{
		Key:     store.ResourceKey{Kind: "jointinferenceservice", Namespace: "ns", Name: "ji"},
		Version: 2,
		Object:  publishedJob(t, jiToken, workerauth.Worker{Pod: "ji-edge-0-abcde", Worker: "edge-0", IP: "127.0.0.1", Kind: "edge"}),
	})
	require.NoError(t, err)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- f.server.Serve(ctx, listener) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
	})
	return "http://" + listener.Addr().String()
}

// TestUpstreamReporterKeepsReporting: after each report this LC cannot use, upstream's reporter is
// answered 200 at its first try and its next report is forwarded; before, a 404 or 503 made it
// retry for 15 s and then stop reporting for good.
func TestUpstreamReporterKeepsReporting(t *testing.T) {
	var outboxFull atomic.Bool
	f := newFixture(t, Options{})
	f.reporter.SetHook(func(context.Context, channel.Key, []byte) error {
		if outboxFull.Load() {
			return fmt.Errorf("queueing a report: %w: 100 reports pending", store.ErrOutboxFull)
		}
		return nil
	})
	reporter := newUpstreamReporter(serveOnLoopback(t, f), "edge-0", 20*time.Millisecond)

	errorCases := []struct {
		name       string
		message    string
		wantStatus int
	}{
		{"upstream's default owner name", strings.Replace(jiReport, `"ownerName":"ji"`, `"ownerName":"sedna"`, 1), http.StatusNotFound},
		{"a namespace that cannot exist", strings.Replace(jiReport, `"namespace":"ns"`, `"namespace":"NS_1"`, 1), http.StatusBadRequest},
		{"a kind without a manager", strings.Replace(jiReport, `"ownerKind":"jointinferenceservice"`, `"ownerKind":"lifelonglearningjob"`, 1), http.StatusNotFound},
		{"a number GM cannot read", strings.Replace(jiReport, `"inferenceNumber":12`, `"inferenceNumber":1e400`, 1), http.StatusBadRequest},
		{"a full outbox", jiReport, http.StatusServiceUnavailable},
	}
	forwarded := 0
	for _, errorCase := range errorCases {
		answer, err := reporter.report(jiReport)
		require.NoError(t, err, "before %s", errorCase.name)
		require.Equal(t, response{Status: http.StatusOK, Message: "OK"}, answer)
		forwarded++
		require.Len(t, f.reporter.Reports(), forwarded)

		outboxFull.Store(errorCase.name == "a full outbox")
		requests := reporter.requests
		answer, err = reporter.report(errorCase.message)
		outboxFull.Store(false)
		require.NoError(t, err, errorCase.name)
		require.Equal(t, errorCase.wantStatus, answer.Status, "%s: %s", errorCase.name, answer.Message)
		require.Equal(t, requests+1, reporter.requests, "%s: answered at the first try", errorCase.name)
		require.Len(t, f.reporter.Reports(), forwarded, "%s is not forwarded", errorCase.name)
	}
	answer, err := reporter.report(jiReport)
	require.NoError(t, err, "still reporting after every error case")
	require.Equal(t, "OK", answer.Message)
	require.Len(t, f.reporter.Reports(), forwarded+1)
	require.False(t, reporter.dead)
}

// TestUpstreamReporterStopsOnRefusal shows the test client really stops: a report from a source
// that is not the job's worker is refused with 403, which upstream's library cannot get past.
func TestUpstreamReporterStopsOnRefusal(t *testing.T) {
	f := newFixture(t, Options{})
	reporter := newUpstreamReporter(serveOnLoopback(t, f), "edge-1", time.Millisecond)
	_, err := reporter.report(strings.ReplaceAll(jiReport, "edge-0", "edge-1"))
	require.ErrorContains(t, err, "5 tries failed, the reporter thread dies: HTTP 403")
	require.Equal(t, upstreamTries, reporter.requests)
	_, err = reporter.report(jiReport)
	require.ErrorContains(t, err, "reports nothing any more")
	require.Equal(t, upstreamTries, reporter.requests)
	require.Empty(t, f.reporter.Reports())
}
