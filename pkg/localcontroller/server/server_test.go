package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/managertest"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

// jiReport is what upstream's joint inference edge worker posts every LC_PERIOD.
const jiReport = `{"name":"edge-0","namespace":"ns","ownerName":"ji","ownerKind":"jointinferenceservice","kind":"inference","status":"","results":[],` +
	`"ownerInfo":{"startTime":"2025-01-01 10:00:00","updateTime":"2025-01-01 10:05:00","inferenceNumber":12,"hardExampleNumber":3,"uploadCloudRatio":0.25}}`

// rejectingManager is a manager whose worker messages fail with a configured error.
type rejectingManager struct{ err error }

func (rejectingManager) Kind() string                                       { return "incrementallearningjob" }
func (rejectingManager) ResourceChanged(context.Context, store.Resource)    {}
func (rejectingManager) ResourceDeleted(context.Context, store.ResourceKey) {}
func (m rejectingManager) HandleWorkerMessage(context.Context, managers.WorkerMessage) error {
	return m.err
}

// datasetOnly is a manager that takes no worker messages.
type datasetOnly struct{}

func (datasetOnly) Kind() string                                       { return "dataset" }
func (datasetOnly) ResourceChanged(context.Context, store.Resource)    {}
func (datasetOnly) ResourceDeleted(context.Context, store.ResourceKey) {}

const (
	// workerIP is httptest.NewRequest's RemoteAddr host: requests of the table tests come from the
	// published pod IP of worker edge-0 (and fl-train-1).
	workerIP = "192.0.2.1"
	// otherWorkerIP is the pod IP of the JI's second edge worker, edge-1.
	otherWorkerIP = "192.0.2.2"
	// jiToken is the JI's worker token; its hash is published with the job.
	jiToken = "aGVsbG8td29ya2VyLXRva2VuLTAxMjM0NTY3ODkwMTI"
)

// publishedJob is a job object as GM publishes it to this node (contract C1): the hash of its
// worker token and its workers on the node.
func publishedJob(t testing.TB, token string, workers ...workerauth.Worker) []byte {
	t.Helper()
	encoded, err := workerauth.EncodeWorkers(workers)
	require.NoError(t, err)
	object, err := json.Marshal(map[string]any{
		"apiVersion": "sedna.io/v1alpha1",
		"metadata": map[string]any{"annotations": map[string]string{
			workerauth.TokenHashAnnotation: workerauth.HashToken(token),
			workerauth.WorkersAnnotation:   encoded,
		}},
	})
	require.NoError(t, err)
	return object
}

type fixture struct {
	st       *store.Store
	reporter *managertest.Reporter
	server   *Server
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "lc.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	for key, object := range map[store.ResourceKey][]byte{
		{Kind: "jointinferenceservice", Namespace: "ns", Name: "ji"}: publishedJob(t, jiToken,
			workerauth.Worker{Pod: "ji-edge-0-abcde", Worker: "edge-0", IP: workerIP, Kind: "edge"},
			workerauth.Worker{Pod: "ji-edge-1-fghij", Worker: "edge-1", IP: otherWorkerIP, Kind: "edge"}),
		{Kind: "federatedlearningjob", Namespace: "ns", Name: "fl"}: publishedJob(t, "fl-token",
			workerauth.Worker{Pod: "fl-train-1-xyz", Worker: "fl-train-1", IP: workerIP, Kind: "train"}),
		{Kind: "incrementallearningjob", Namespace: "ns", Name: "il"}: publishedJob(t, "il-token",
			workerauth.Worker{Pod: "il-eval-1", Worker: "edge-0", IP: workerIP, Kind: "eval"}),
		{Kind: "dataset", Namespace: "ns", Name: "ds"}: []byte(`{}`),
	} {
		_, err := st.PutResource(store.Resource{Key: key, Version: 1, Object: object})
		require.NoError(t, err)
	}
	reporter := &managertest.Reporter{}
	ji, err := managers.NewForwarder(managers.KindJointInferenceService, reporter)
	require.NoError(t, err)
	fl, err := managers.NewForwarder(managers.KindFederatedLearningJob, reporter)
	require.NoError(t, err)
	il := rejectingManager{err: fmt.Errorf("%w: results of an eval report must list two models", managers.ErrInvalidMessage)}
	dispatcher, err := managers.NewDispatcher(ji, fl, il, datasetOnly{})
	require.NoError(t, err)
	return &fixture{st: st, reporter: reporter, server: New(opts, st, dispatcher)}
}

// do sends one request through the handler and decodes upstream's response shape.
func (f *fixture) do(t *testing.T, method, path, body string) (*http.Response, response) {
	t.Helper()
	recorder := httptest.NewRecorder()
	f.server.ServeHTTP(recorder, httptest.NewRequest(method, path, strings.NewReader(body)))
	result := recorder.Result()
	var decoded response
	require.NoError(t, json.NewDecoder(result.Body).Decode(&decoded), "response body of %s %s", method, path)
	return result, decoded
}

func TestWorkerInfo(t *testing.T) {
	const path = "/sedna/workers/edge-0/info"
	tests := map[string]struct {
		method      string
		path        string
		body        string
		hookErr     error
		wantCode    int    // the HTTP status; 0 means wantStatus
		wantStatus  int    // the outcome in the body's Status
		wantMessage string // exact when wantExact, else a substring
		wantExact   bool
		wantDropped string // the dropped_reports_total reason counted
		wantReports []string
	}{
		"joint inference report is forwarded": {
			body:        jiReport,
			wantStatus:  http.StatusOK,
			wantMessage: "OK", wantExact: true,
			wantReports: []string{`{"phase":"inference","status":"","output":{"models":[],"ownerInfo":{"startTime":"2025-01-01 10:00:00","updateTime":"2025-01-01 10:05:00","inferenceNumber":12,"hardExampleNumber":3,"uploadCloudRatio":0.25}},"worker":"edge-0"}`},
		},
		"federated learning round with large numbers kept exact": {
			path:        "/sedna/workers/fl-train-1/info",
			body:        `{"name":"fl-train-1","namespace":"ns","ownerName":"fl","ownerKind":"FederatedLearningJob","kind":"train","status":"running","ownerInfo":{"currentRound":3,"sampleCount":12345678901234567890}}`,
			wantStatus:  http.StatusOK,
			wantMessage: "OK", wantExact: true,
			wantReports: []string{`{"phase":"train","status":"running","output":{"models":null,"ownerInfo":{"currentRound":3,"sampleCount":12345678901234567890}},"worker":"fl-train-1"}`},
		},
		"not JSON": {
			body:        `{"name":`,
			wantStatus:  http.StatusBadRequest,
			wantMessage: "request body is not a valid JSON worker message: unexpected EOF", wantExact: true,
		},
		"field of the wrong type": {
			body:        `{"name":"edge-0","namespace":"ns","ownerName":"ji","ownerKind":"jointinferenceservice","results":{"a":1}}`,
			wantStatus:  http.StatusBadRequest,
			wantMessage: "cannot unmarshal object into Go struct field WorkerMessage.results",
		},
		"data after the message": {
			body:        jiReport + `{}`,
			wantStatus:  http.StatusBadRequest,
			wantMessage: "request body has data after the JSON worker message", wantExact: true,
		},
		"empty body": {
			wantStatus:  http.StatusBadRequest,
			wantMessage: "request body is empty: want a JSON worker message", wantExact: true,
		},
		"body over the limit": {
			body:        `{"name":"edge-0","ownerInfo":{"pad":"` + strings.Repeat("x", 4096) + `"}}`,
			wantStatus:  http.StatusBadRequest,
			wantMessage: "request body exceeds the limit of 1024 bytes", wantExact: true,
		},
		"required fields missing": {
			body:        `{"kind":"train"}`,
			wantStatus:  http.StatusBadRequest,
			wantMessage: "worker message lacks name, namespace, ownerName, ownerKind", wantExact: true,
		},
		"name differs from the path": {
			body:        strings.Replace(jiReport, `"name":"edge-0"`, `"name":"edge-1"`, 1),
			wantStatus:  http.StatusBadRequest,
			wantMessage: `worker name "edge-1" in the body differs from "edge-0" in the path`, wantExact: true,
		},
		"namespace that cannot exist": {
			body:        strings.Replace(jiReport, `"namespace":"ns"`, `"namespace":"NS_1"`, 1),
			wantCode:    http.StatusOK,
			wantDropped: "invalid",
			wantStatus:  http.StatusBadRequest,
			wantMessage: `namespace "NS_1" is not a valid namespace`,
		},
		"ownerKind that is no kind": {
			body:        strings.Replace(jiReport, `"ownerKind":"jointinferenceservice"`, `"ownerKind":"joint-inference"`, 1),
			wantCode:    http.StatusOK,
			wantDropped: "invalid",
			wantStatus:  http.StatusBadRequest,
			wantMessage: `ownerKind "joint-inference" is not a kind name`, wantExact: true,
		},
		"kind without a manager": {
			body:        strings.Replace(jiReport, `"ownerKind":"jointinferenceservice"`, `"ownerKind":"lifelonglearningjob"`, 1),
			wantCode:    http.StatusOK,
			wantDropped: "no_manager",
			wantStatus:  http.StatusNotFound,
			wantMessage: `this node takes no worker reports about ownerKind "lifelonglearningjob"`, wantExact: true,
		},
		"multi-edge kind, accepted and dropped as upstream does": {
			body:        strings.Replace(jiReport, `"ownerKind":"jointinferenceservice"`, `"ownerKind":"reidjob"`, 1),
			wantDropped: "unforwarded_kind",
			wantStatus:  http.StatusOK,
			wantMessage: `OK: reports about reidjob are not forwarded`, wantExact: true,
		},
		"kind whose manager takes no worker reports": {
			body:        `{"name":"edge-0","namespace":"ns","ownerName":"ds","ownerKind":"dataset"}`,
			wantCode:    http.StatusOK,
			wantDropped: "no_manager",
			wantStatus:  http.StatusNotFound,
			wantMessage: `this node takes no worker reports about ownerKind "dataset"`, wantExact: true,
		},
		"owner not bound to this node": {
			body:        strings.Replace(jiReport, `"ownerName":"ji"`, `"ownerName":"other"`, 1),
			wantCode:    http.StatusOK,
			wantDropped: "unknown_owner",
			wantStatus:  http.StatusNotFound,
			wantMessage: "jointinferenceservice ns/other is not bound to this node", wantExact: true,
		},
		"owner in another namespace": {
			body:        strings.Replace(jiReport, `"namespace":"ns"`, `"namespace":"other"`, 1),
			wantCode:    http.StatusOK,
			wantDropped: "unknown_owner",
			wantStatus:  http.StatusNotFound,
			wantMessage: "jointinferenceservice other/ji is not bound to this node", wantExact: true,
		},
		"report could not be queued": {
			body:        jiReport,
			hookErr:     errors.New("outbox is full: 100000 reports pending"),
			wantCode:    http.StatusOK,
			wantDropped: "queue_failed",
			wantStatus:  http.StatusServiceUnavailable,
			wantMessage: "queueing the report of worker edge-0 about jointinferenceservice/ns/ji for GM: outbox is full: 100000 reports pending", wantExact: true,
		},
		"outbox full": {
			body:        jiReport,
			hookErr:     fmt.Errorf("queueing a report: %w: 3 reports pending (limit 3)", store.ErrOutboxFull),
			wantCode:    http.StatusOK,
			wantDropped: "outbox_full",
			wantStatus:  http.StatusServiceUnavailable,
			wantMessage: "outbox full: queueing the report of worker edge-0 about jointinferenceservice/ns/ji for GM: queueing a report: outbox is full: 3 reports pending (limit 3)", wantExact: true,
		},
		"owner fields missing from the path's worker": {
			body:        `{"name":"edge-0","kind":"inference"}`,
			wantCode:    http.StatusOK,
			wantDropped: "invalid",
			wantStatus:  http.StatusBadRequest,
			wantMessage: "worker message lacks namespace, ownerName, ownerKind", wantExact: true,
		},
		"upstream's default owner name sedna": {
			body:        strings.Replace(jiReport, `"ownerName":"ji"`, `"ownerName":"sedna"`, 1),
			wantCode:    http.StatusOK,
			wantDropped: "unknown_owner",
			wantStatus:  http.StatusNotFound,
			wantMessage: "jointinferenceservice ns/sedna is not bound to this node", wantExact: true,
		},
		"manager refuses the message": {
			body:        `{"name":"edge-0","namespace":"ns","ownerName":"il","ownerKind":"incrementallearningjob","kind":"eval","status":"completed"}`,
			wantCode:    http.StatusOK,
			wantDropped: "invalid",
			wantStatus:  http.StatusBadRequest,
			wantMessage: "results of an eval report must list two models",
		},
		"other method": {
			method:      http.MethodGet,
			wantStatus:  http.StatusMethodNotAllowed,
			wantMessage: "method GET is not allowed: worker reports are POSTed", wantExact: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, Options{MaxBodyBytes: 1024})
			if tc.hookErr != nil {
				f.reporter.SetHook(func(context.Context, channel.Key, []byte) error { return tc.hookErr })
			}
			method, requestPath := tc.method, tc.path
			if method == "" {
				method = http.MethodPost
			}
			if requestPath == "" {
				requestPath = path
			}
			result, decoded := f.do(t, method, requestPath, tc.body)

			wantCode := tc.wantCode
			if wantCode == 0 {
				wantCode = tc.wantStatus
			}
			require.Equal(t, wantCode, result.StatusCode)
			require.Equal(t, "application/json", result.Header.Get("Content-Type"))
			require.Equal(t, tc.wantStatus, decoded.Status)
			if tc.wantExact {
				require.Equal(t, tc.wantMessage, decoded.Message)
			} else {
				require.Contains(t, decoded.Message, tc.wantMessage)
			}
			if tc.wantStatus == http.StatusMethodNotAllowed {
				require.Equal(t, http.MethodPost, result.Header.Get("Allow"))
			}
			for _, reason := range dropReasons {
				want := 0.0
				if reason == tc.wantDropped {
					want = 1
				}
				require.Equal(t, want, testutil.ToFloat64(f.server.dropped.WithLabelValues(reason)), "dropped reports with reason %s", reason)
			}
			contents := f.reporter.Contents()
			require.Len(t, contents, len(tc.wantReports), "reports: %q", contents)
			for i, want := range tc.wantReports {
				require.JSONEq(t, want, contents[i])
			}
			if len(tc.wantReports) > 0 && strings.Contains(tc.wantReports[0], "12345678901234567890") {
				require.Contains(t, contents[0], "12345678901234567890", "numbers are forwarded as written")
			}
		})
	}
}

// outboxReporter queues reports in the store's durable outbox, as the LC's Reporter does.
type outboxReporter struct{ st *store.Store }

func (r outboxReporter) Report(_ context.Context, key channel.Key, content []byte) error {
	payload, err := json.Marshal(map[string]any{"key": key, "content": json.RawMessage(content)})
	if err != nil {
		return err
	}
	_, err = r.st.Enqueue(payload)
	return err
}

func TestOKMeansTheReportIsInTheOutbox(t *testing.T) {
	f := newFixture(t, Options{})
	forwarder, err := managers.NewForwarder(managers.KindJointInferenceService, outboxReporter{st: f.st})
	require.NoError(t, err)
	dispatcher, err := managers.NewDispatcher(forwarder)
	require.NoError(t, err)
	server := New(Options{}, f.st, dispatcher)

	recorder := httptest.NewRecorder()
	server.ServeHTTP(recorder, httptest.NewRequest(http.MethodPost, "/sedna/workers/edge-0/info", strings.NewReader(jiReport)))
	require.Equal(t, http.StatusOK, recorder.Code)
	require.JSONEq(t, `{"Status":200,"Message":"OK"}`, recorder.Body.String())

	pending, err := f.st.Pending(0, 0)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Contains(t, string(pending[0].Payload), `"phase":"inference"`)
}

func TestHealthzAndMetrics(t *testing.T) {
	registry := prometheus.NewRegistry()
	lcGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sedna_lc_test_gauge", Help: "A metric of the LC's registry."})
	lcGauge.Set(7)
	registry.MustRegister(lcGauge)
	f := newFixture(t, Options{Registry: registry})

	recorder := httptest.NewRecorder()
	f.server.ServeHTTP(recorder, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, recorder.Code)
	require.Equal(t, "ok", recorder.Body.String())

	f.do(t, http.MethodPost, "/sedna/workers/edge-0/info", jiReport)
	f.do(t, http.MethodPost, "/sedna/workers/edge-0/info", jiReport)
	f.do(t, http.MethodPost, "/sedna/workers/edge-0/info", `{`)

	recorder = httptest.NewRecorder()
	f.server.ServeHTTP(recorder, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, recorder.Code)
	metrics := recorder.Body.String()
	require.Contains(t, metrics, `sedna_lc_worker_api_requests_total{code="200"} 3`, "two reports and /healthz")
	require.Contains(t, metrics, `sedna_lc_worker_api_requests_total{code="400"} 1`)
	require.Contains(t, metrics, "sedna_lc_test_gauge 7")
}

func TestServeAnswersReportsInFlightWhenStopped(t *testing.T) {
	f := newFixture(t, Options{})
	entered := make(chan struct{})
	release := make(chan struct{})
	f.reporter.SetHook(func(ctx context.Context, _ channel.Key, _ []byte) error {
		close(entered)
		<-release
		// The request's context must not be cancelled by the LC stopping.
		return ctx.Err()
	})
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- f.server.Serve(ctx, listener) }()
	url := "http://" + listener.Addr().String() + "/sedna/workers/edge-0/info"

	type result struct {
		status int
		body   string
		err    error
	}
	answered := make(chan result, 1)
	go func() {
		request, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(jiReport)))
		if err != nil {
			answered <- result{err: err}
			return
		}
		request.Header.Set("Authorization", "Bearer "+jiToken)
		resp, err := http.DefaultClient.Do(request)
		if err != nil {
			answered <- result{err: err}
			return
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		answered <- result{status: resp.StatusCode, body: string(body), err: err}
	}()
	<-entered
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a report was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)

	got := <-answered
	require.NoError(t, got.err)
	require.Equal(t, http.StatusOK, got.status)
	require.JSONEq(t, `{"Status":200,"Message":"OK"}`, got.body)
	require.NoError(t, <-served)
	_, err = net.DialTimeout("tcp", listener.Addr().String(), time.Second)
	require.Error(t, err, "the listener is closed after shutdown")
}

func TestRunReportsListenErrors(t *testing.T) {
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = occupied.Close() })
	f := newFixture(t, Options{Addr: occupied.Addr().String()})
	err = f.server.Run(t.Context())
	require.ErrorContains(t, err, "listening for worker reports on "+occupied.Addr().String())
}

func TestRunServesOnItsAddress(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := probe.Addr().String()
	require.NoError(t, probe.Close())
	f := newFixture(t, Options{Addr: addr})
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- f.server.Run(ctx) }()

	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-served)
}

func TestNewAppliesDefaults(t *testing.T) {
	f := newFixture(t, Options{})
	require.Equal(t, DefaultAddr, f.server.addr)
	require.Equal(t, DefaultMaxBodyBytes, f.server.maxBodyBytes)
}

func TestNumbersOutOfRangeAreRefused(t *testing.T) {
	tests := map[string]struct {
		body        string
		wantMessage string
	}{
		"in ownerInfo": {
			body:        `{"name":"edge-0","namespace":"ns","ownerName":"ji","ownerKind":"jointinferenceservice","ownerInfo":{"inferenceNumber":1e400}}`,
			wantMessage: "ownerInfo.inferenceNumber: number 1e400 is out of range",
		},
		"deep in results": {
			body:        `{"name":"edge-0","namespace":"ns","ownerName":"ji","ownerKind":"jointinferenceservice","results":[{"metrics":{"acc":[0.5,-1e999]}}]}`,
			wantMessage: "results[0].metrics.acc[1]: number -1e999 is out of range",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, Options{})
			result, decoded := f.do(t, http.MethodPost, "/sedna/workers/edge-0/info", tc.body)
			// Upstream's LC read such numbers and answered 200; the body carries the refusal.
			require.Equal(t, http.StatusOK, result.StatusCode)
			require.Equal(t, http.StatusBadRequest, decoded.Status)
			require.Equal(t, tc.wantMessage, decoded.Message)
			require.Empty(t, f.reporter.Reports())
		})
	}
}

func TestUnknownPathsAnswerInUpstreamShape(t *testing.T) {
	f := newFixture(t, Options{})
	result, decoded := f.do(t, http.MethodPost, "/sedna/workers/edge-0/status", jiReport)
	require.Equal(t, http.StatusNotFound, result.StatusCode)
	require.Equal(t, "no endpoint /sedna/workers/edge-0/status: workers post to /sedna/workers/{worker}/info", decoded.Message)
	require.Empty(t, f.reporter.Reports())
}
