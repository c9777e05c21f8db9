package lc

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeLC answers with the scripted statuses in order, then 200, recording
// every request it saw.
type fakeLC struct {
	mu       sync.Mutex
	statuses []int
	paths    []string
	bodies   []string
}

func (f *fakeLC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.bodies = append(f.bodies, string(body))
	status := http.StatusOK
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	f.mu.Unlock()
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"Status": status, "Message": "scripted " + http.StatusText(status)})
}

func (f *fakeLC) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.paths)
}

func TestReport(t *testing.T) {
	msg := Message{
		Name: "edge-0", Namespace: "ns", OwnerName: "ji", OwnerKind: OwnerKindJointInference,
		Kind: KindInference, Results: []any{}, OwnerInfo: map[string]any{"inferenceNumber": 3},
	}
	tests := map[string]struct {
		statuses     []int
		attempts     int
		wantErr      string
		wantRequests int
	}{
		"ok first time":              {attempts: 5, wantRequests: 1},
		"ok after two failures":      {statuses: []int{503, 500}, attempts: 5, wantRequests: 3},
		"all attempts fail":          {statuses: []int{503, 503, 503}, attempts: 3, wantErr: "LC answered 503 Service Unavailable: scripted Service Unavailable", wantRequests: 3},
		"bad request is not retried": {statuses: []int{400}, attempts: 5, wantErr: "LC answered 400 Bad Request", wantRequests: 1},
		"201 is not success":         {statuses: []int{201}, attempts: 1, wantErr: "LC answered 201", wantRequests: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lc := &fakeLC{statuses: tc.statuses}
			server := httptest.NewServer(lc)
			defer server.Close()
			client, err := New(Options{Server: server.URL + "/", Worker: "edge-0", Attempts: tc.attempts, Interval: time.Millisecond})
			require.NoError(t, err)

			err = client.Report(context.Background(), msg)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				var statusErr *StatusError
				require.ErrorAs(t, err, &statusErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.wantRequests, lc.requests())
			require.Equal(t, "POST /sedna/workers/edge-0/info", lc.paths[0])
			require.JSONEq(t, `{"name":"edge-0","namespace":"ns","ownerName":"ji","ownerKind":"jointinferenceservice",
				"kind":"inference","results":[],"ownerInfo":{"inferenceNumber":3}}`, lc.bodies[0])
		})
	}
}

func TestReportOmitsAbsentFields(t *testing.T) {
	body, err := json.Marshal(Message{Name: "w", Namespace: "ns", OwnerName: "il", OwnerKind: "incrementallearningjob", Kind: "train", Status: "completed"})
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"w","namespace":"ns","ownerName":"il","ownerKind":"incrementallearningjob","kind":"train","status":"completed"}`, string(body))
}

func TestReportNonJSONAnswer(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such route", http.StatusNotFound)
	}))
	defer server.Close()
	client, err := New(Options{Server: server.URL, Worker: "w", Attempts: 1})
	require.NoError(t, err)
	require.ErrorContains(t, client.Report(context.Background(), Message{Kind: "train"}), "LC answered 404 Not Found: no such route")
}

func TestReportUnreachable(t *testing.T) {
	server := httptest.NewServer(http.NotFoundHandler())
	address := server.URL
	server.Close()
	client, err := New(Options{Server: address, Worker: "w", Attempts: 2, Interval: time.Millisecond})
	require.NoError(t, err)
	err = client.Report(context.Background(), Message{Kind: "inference"})
	require.ErrorContains(t, err, "reporting inference to "+address+"/sedna/workers/w/info: posting:")
}

func TestReportStopsWithContext(t *testing.T) {
	lc := &fakeLC{statuses: []int{503, 503, 503, 503, 503}}
	server := httptest.NewServer(lc)
	defer server.Close()
	client, err := New(Options{Server: server.URL, Worker: "w", Attempts: 5, Interval: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = client.Report(ctx, Message{Kind: "inference"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "503")
	require.Equal(t, 1, lc.requests())
}

func TestNewValidates(t *testing.T) {
	tests := map[string]struct {
		opts    Options
		wantErr string
	}{
		"no worker":   {opts: Options{Server: "http://lc:9100"}, wantErr: "worker name is empty"},
		"no scheme":   {opts: Options{Server: "lc:9100", Worker: "w"}, wantErr: "is not an http(s) URL"},
		"bad url":     {opts: Options{Server: "http://lc:port", Worker: "w"}, wantErr: "parsing LC server URL"},
		"defaults ok": {opts: Options{Server: "http://lc:9100", Worker: "w x"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client, err := New(tc.opts)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "http://lc:9100/sedna/workers/w%20x/info", client.Endpoint())
			require.Equal(t, DefaultAttempts, client.attempts)
			require.Equal(t, DefaultInterval, client.interval)
		})
	}
}
