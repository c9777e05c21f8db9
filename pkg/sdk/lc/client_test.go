package lc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/workerauth"
)

// fakeLC answers with the scripted statuses in order, then 200, recording
// every request it saw. A status of inBody+N is answered HTTP 200 with
// outcome N in the body, as the LC answers reports it drops.
type fakeLC struct {
	mu             sync.Mutex
	statuses       []int
	paths          []string
	bodies         []string
	authorizations [][]string
}

const inBody = 1000

func (f *fakeLC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.bodies = append(f.bodies, string(body))
	f.authorizations = append(f.authorizations, r.Header.Values("Authorization"))
	status := http.StatusOK
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	f.mu.Unlock()
	code := status
	if status > inBody {
		code, status = http.StatusOK, status-inBody
	}
	w.WriteHeader(code)
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
		"refusal is not retried":     {statuses: []int{403}, attempts: 5, wantErr: "LC answered 403 Forbidden: scripted Forbidden", wantRequests: 1},
		"dropped as unusable, not retried": {
			statuses: []int{inBody + 400}, attempts: 5, wantErr: "LC dropped the report (400 Bad Request): scripted Bad Request", wantRequests: 1,
		},
		"dropped for a full outbox, retried": {
			statuses: []int{inBody + 503, inBody + 503}, attempts: 5, wantRequests: 3,
		},
		"dropped for an unknown owner, every attempt": {
			statuses: []int{inBody + 404, inBody + 404}, attempts: 2, wantErr: "LC dropped the report (404 Not Found): scripted Not Found", wantRequests: 2,
		},
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
				last := lc.requests() - 1
				require.Equal(t, statusErr.InBody, tc.statuses[min(last, len(tc.statuses)-1)] > inBody)
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

func TestReportReadsPlainSuccess(t *testing.T) {
	for name, answer := range map[string]string{
		"upstream's OK":    `{"Status":200,"Message":"OK"}`,
		"no Status":        `{"Message":"fine"}`,
		"not JSON":         `ok`,
		"an empty answer":  ``,
		"a status of 200s": `{"Status":200}`,
	} {
		t.Run(name, func(t *testing.T) {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, answer)
			}))
			defer server.Close()
			client, err := New(Options{Server: server.URL, Worker: "w", Attempts: 1})
			require.NoError(t, err)
			require.NoError(t, client.Report(context.Background(), Message{Kind: "train"}))
		})
	}
}

func TestReportSendsTheWorkerToken(t *testing.T) {
	tests := map[string]struct {
		option, env string
		want        []string
	}{
		"no token":                     {},
		"token option":                 {option: "opt-token", want: []string{"Bearer opt-token"}},
		"SEDNA_WORKER_TOKEN":           {env: "env-token", want: []string{"Bearer env-token"}},
		"the option wins over the env": {option: "opt-token", env: "env-token", want: []string{"Bearer opt-token"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv(workerauth.TokenEnv, tc.env)
			lc := &fakeLC{statuses: []int{503}}
			server := httptest.NewServer(lc)
			defer server.Close()
			client, err := New(Options{Server: server.URL, Worker: "w", Attempts: 2, Interval: time.Millisecond, Token: tc.option})
			require.NoError(t, err)
			require.NoError(t, client.Report(context.Background(), Message{Kind: "train"}))
			require.Equal(t, 2, lc.requests())
			for _, got := range lc.authorizations {
				require.Equal(t, tc.want, got, "every attempt carries the token")
			}
		})
	}
}

func TestNewRefusesATokenWithWhiteSpace(t *testing.T) {
	_, err := New(Options{Server: "http://lc:9100", Worker: "w", Token: "abc\n"})
	require.ErrorContains(t, err, "the worker token (SEDNA_WORKER_TOKEN) contains white space")
}

func TestRetryableTellsARefusalFromAnOutage(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("reporting: %w", &StatusError{StatusCode: http.StatusServiceUnavailable, InBody: true}), true},
		{fmt.Errorf("reporting: %w", &StatusError{StatusCode: http.StatusNotFound}), true},
		{fmt.Errorf("reporting: %w", &StatusError{StatusCode: http.StatusBadRequest, InBody: true}), false},
		{fmt.Errorf("reporting: %w", &StatusError{StatusCode: http.StatusForbidden}), false},
		{errors.New("posting: connection refused"), true},
	} {
		require.Equal(t, c.want, Retryable(c.err), "%v", c.err)
	}
}
