package jointinference

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/sdk/hem"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// recordingLC is a fake LC worker endpoint.
type recordingLC struct {
	mu      sync.Mutex
	paths   []string
	bodies  []string
	arrived chan struct{}
}

func newRecordingLC() *recordingLC { return &recordingLC{arrived: make(chan struct{}, 100)} }

func (l *recordingLC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.paths = append(l.paths, r.Method+" "+r.URL.Path)
	l.bodies = append(l.bodies, string(body))
	l.mu.Unlock()
	_, _ = w.Write([]byte(`{"Status":200,"Message":"OK"}`))
	l.arrived <- struct{}{}
}

func (l *recordingLC) snapshot() ([]string, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string{}, l.paths...), append([]string{}, l.bodies...)
}

func TestReporterSendsCountersToLC(t *testing.T) {
	fakeLC := newRecordingLC()
	lcServer := httptest.NewServer(fakeLC)
	defer lcServer.Close()
	client, err := lc.New(lc.Options{Server: lcServer.URL, Worker: "ji-edge-0", Attempts: 1})
	require.NoError(t, err)

	cloud := httptest.NewServer(&fakeCloud{mode: "ok"})
	defer cloud.Close()
	edge, err := NewEdge(EdgeOptions{Job: "sedna", CloudURL: cloud.URL, Model: &scoredModel{}, Miner: &hem.Threshold{Threshold: 0.5}})
	require.NoError(t, err)

	fixed := time.Date(2025, 1, 1, 10, 0, 0, 0, time.Local)
	run := func(quiet time.Duration, waitForReport bool) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- edge.RunReporter(ctx, ReporterOptions{
				Reporter: client, Period: 20 * time.Millisecond,
				Name: "ji-edge-0", Namespace: "default", OwnerName: "sedna",
				Now: func() time.Time { return fixed },
			})
		}()
		if waitForReport {
			select {
			case <-fakeLC.arrived:
			case <-time.After(5 * time.Second):
				t.Fatal("no report reached the LC")
			}
		}
		// Several more periods pass; nothing new must be sent.
		time.Sleep(quiet)
		cancel()
		require.NoError(t, <-done)
	}

	// No inferences yet: the reporter stays quiet.
	run(100*time.Millisecond, false)
	paths, _ := fakeLC.snapshot()
	require.Empty(t, paths, "the reporter must stay quiet without inferences")

	// The inferences happen while no reporter runs, so one report carries
	// all four and the test does not race the ticker.
	for _, score := range []float64{0.9, 0.1, 0.9, 0.8} {
		_, err := edge.Infer(context.Background(), map[string]any{"score": score})
		require.NoError(t, err)
	}
	run(100*time.Millisecond, true)

	paths, bodies := fakeLC.snapshot()
	require.Equal(t, []string{"POST /sedna/workers/ji-edge-0/info"}, paths)
	require.JSONEq(t, `{"name":"ji-edge-0","namespace":"default","ownerName":"sedna","ownerKind":"jointinferenceservice",
		"kind":"inference","results":[],
		"ownerInfo":{"startTime":"2025-01-01 10:00:00","updateTime":"2025-01-01 10:00:00",
			"inferenceNumber":4,"hardExampleNumber":1,"uploadCloudRatio":0.25}}`, bodies[0])
}

// flakyReporter fails its first report and records the rest.
type flakyReporter struct {
	mu       sync.Mutex
	failures int
	sent     []lc.Message
}

func (r *flakyReporter) Report(_ context.Context, msg lc.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		return errors.New("LC answered 503")
	}
	r.sent = append(r.sent, msg)
	return nil
}

func TestReportOnceKeepsPendingAfterFailure(t *testing.T) {
	edge, err := NewEdge(EdgeOptions{Job: "sedna", CloudURL: "http://127.0.0.1:1", Model: &scoredModel{}, Miner: hem.Constant(false)})
	require.NoError(t, err)
	reporter := &flakyReporter{failures: 1}
	opts := ReporterOptions{Reporter: reporter, Period: time.Second, Name: "w", Namespace: "ns", OwnerName: "ji"}
	start := time.Date(2025, 1, 1, 10, 0, 0, 0, time.Local)
	end := start.Add(30 * time.Second)

	sent, err := edge.reportOnce(context.Background(), opts, start, end)
	require.NoError(t, err)
	require.False(t, sent, "nothing to report before any inference")

	_, err = edge.Infer(context.Background(), map[string]any{"score": 0.9})
	require.NoError(t, err)
	_, err = edge.reportOnce(context.Background(), opts, start, end)
	require.ErrorContains(t, err, "reporting 1 inferences: LC answered 503")

	sent, err = edge.reportOnce(context.Background(), opts, start, end)
	require.NoError(t, err)
	require.True(t, sent, "a failed report must be retried next period")
	require.Equal(t, OwnerInfo{
		StartTime: "2025-01-01 10:00:00", UpdateTime: "2025-01-01 10:00:30",
		InferenceNumber: 1, HardExampleNumber: 0, UploadCloudRatio: 0,
	}, reporter.sent[0].OwnerInfo)

	sent, err = edge.reportOnce(context.Background(), opts, start, end)
	require.NoError(t, err)
	require.False(t, sent, "no new inferences since the last report")
}

func TestRunReporterValidates(t *testing.T) {
	edge, err := NewEdge(EdgeOptions{Job: "sedna", CloudURL: "http://127.0.0.1:1", Model: &scoredModel{}, Miner: hem.Constant(false)})
	require.NoError(t, err)
	require.ErrorContains(t, edge.RunReporter(context.Background(), ReporterOptions{Period: time.Second}), "a Reporter is required")
	require.ErrorContains(t, edge.RunReporter(context.Background(), ReporterOptions{Reporter: &flakyReporter{}}), "period 0s must be positive")
}

// reporterFunc adapts a function to Reporter.
type reporterFunc func(ctx context.Context, msg lc.Message) error

func (f reporterFunc) Report(ctx context.Context, msg lc.Message) error { return f(ctx, msg) }

func TestReportOnceKeepsInferencesMadeDuringTheReport(t *testing.T) {
	edge, err := NewEdge(EdgeOptions{Job: "sedna", CloudURL: "http://127.0.0.1:1", Model: &scoredModel{}, Miner: hem.Constant(false)})
	require.NoError(t, err)
	var reported []int64
	reporter := reporterFunc(func(_ context.Context, msg lc.Message) error {
		reported = append(reported, msg.OwnerInfo.(OwnerInfo).InferenceNumber)
		if len(reported) == 1 {
			// An inference lands while the first report is in flight.
			_, err := edge.Infer(context.Background(), map[string]any{"score": 0.9})
			require.NoError(t, err)
		}
		return nil
	})
	opts := ReporterOptions{Reporter: reporter, Period: time.Second}
	_, err = edge.Infer(context.Background(), map[string]any{"score": 0.9})
	require.NoError(t, err)

	now := time.Now()
	for range 3 {
		_, err := edge.reportOnce(context.Background(), opts, now, now)
		require.NoError(t, err)
	}
	require.Equal(t, []int64{1, 2}, reported, "the in-flight inference must be reported next period, and only once")
}
