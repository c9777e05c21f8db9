package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

func TestWorkerAuth(t *testing.T) {
	const path = "/sedna/workers/edge-0/info"
	tests := map[string]struct {
		remote        string
		authorization []string
		// job replaces the published ns/ji object when set.
		job         []byte
		worker      string // the reporting worker; "" means edge-0
		wantRefused string // the refusal reason; "" means accepted
		wantMessage string
	}{
		"worker's pod IP without a token":               {remote: workerIP + ":40000"},
		"worker's pod IP as an IPv4-mapped IPv6 peer":   {remote: "[::ffff:" + workerIP + "]:40000"},
		"token from any address":                        {remote: "203.0.113.7:40000", authorization: []string{"Bearer " + jiToken}},
		"token with a lower-case scheme":                {remote: "203.0.113.7:40000", authorization: []string{"bearer " + jiToken}},
		"the other worker's pod IP, under its own name": {remote: otherWorkerIP + ":1", worker: "edge-1"},
		"another address on the node network": {
			remote: "192.0.2.77:40000", wantRefused: refusedUnknownSource,
			wantMessage: `no worker token, and 192.0.2.77 is not the pod IP of worker "edge-0" of this job on this node`,
		},
		"a worker's pod IP reporting as another worker": {
			remote: otherWorkerIP + ":40000", wantRefused: refusedUnknownSource,
			wantMessage: `no worker token, and 192.0.2.2 is not the pod IP of worker "edge-0" of this job on this node`,
		},
		"X-Forwarded-For is not a source": {
			remote: "192.0.2.77:40000", authorization: nil, wantRefused: refusedUnknownSource,
		},
		"wrong token from the worker's pod IP": {
			remote: workerIP + ":40000", authorization: []string{"Bearer " + strings.Repeat("A", 43)},
			wantRefused: refusedWrongToken, wantMessage: "the bearer token is not this job's worker token",
		},
		"another job's token": {
			remote: workerIP + ":40000", authorization: []string{"Bearer fl-token"},
			wantRefused: refusedWrongToken,
		},
		"a token when the job has no published hash": {
			remote: workerIP + ":40000", authorization: []string{"Bearer " + jiToken},
			job:         []byte(`{"metadata":{"annotations":{"sedna.io/workers":"[{\"pod\":\"p\",\"worker\":\"edge-0\",\"ip\":\"192.0.2.1\",\"kind\":\"edge\"}]"}}}`),
			wantRefused: refusedWrongToken,
		},
		"the token hash itself as the token": {
			remote: "203.0.113.7:40000", authorization: []string{"Bearer " + workerauth.HashToken(jiToken)},
			wantRefused: refusedWrongToken,
		},
		"basic credentials": {
			remote: workerIP + ":40000", authorization: []string{"Basic ZWRnZS0wOnB3"},
			wantRefused: refusedMalformedAuth, wantMessage: `the Authorization header is not "Bearer <token>"`,
		},
		"empty Authorization header from the worker's pod IP": {
			remote: workerIP + ":40000", authorization: []string{""},
			wantRefused: refusedMalformedAuth,
		},
		"bearer without a token": {
			remote: workerIP + ":40000", authorization: []string{"Bearer "},
			wantRefused: refusedMalformedAuth, wantMessage: "the bearer token is empty, too long or has characters a token cannot have",
		},
		"two Authorization headers, one of them right": {
			remote: "203.0.113.7:40000", authorization: []string{"Bearer " + jiToken, "Bearer x"},
			wantRefused: refusedMalformedAuth, wantMessage: "2 Authorization headers, want one",
		},
		"job published without identities": {
			remote: workerIP + ":40000", job: []byte(`{"metadata":{}}`),
			wantRefused: refusedUnknownSource,
		},
		"published worker without an IP yet": {
			remote:      workerIP + ":40000",
			job:         publishedJob(t, jiToken, workerauth.Worker{Pod: "ji-edge-0-abcde", Worker: "edge-0", Kind: "edge"}),
			wantRefused: refusedUnknownSource,
		},
		"unreadable workers annotation": {
			remote:      workerIP + ":40000",
			job:         []byte(`{"metadata":{"annotations":{"sedna.io/workers":"[{\"pod\":\"p\"}"}}}`),
			wantRefused: refusedUnreadableIdentities, wantMessage: "this node cannot tell the workers of jointinferenceservice ns/ji",
		},
		"unreadable token hash": {
			remote: "203.0.113.7:40000", authorization: []string{"Bearer " + jiToken},
			job:         []byte(`{"metadata":{"annotations":{"sedna.io/worker-token-sha256":"not-hex"}}}`),
			wantRefused: refusedUnreadableIdentities,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, Options{})
			if tc.job != nil {
				_, err := f.st.PutResource(store.Resource{
					Key: store.ResourceKey{Kind: "jointinferenceservice", Namespace: "ns", Name: "ji"}, Version: 2, Object: tc.job,
				})
				require.NoError(t, err)
			}
			worker := tc.worker
			if worker == "" {
				worker = "edge-0"
			}
			request := httptest.NewRequest(http.MethodPost, strings.Replace(path, "edge-0", worker, 1),
				strings.NewReader(strings.ReplaceAll(jiReport, "edge-0", worker)))
			request.RemoteAddr = tc.remote
			for _, value := range tc.authorization {
				request.Header.Add("Authorization", value)
			}
			// Anything on the node network can write this header; it must not count.
			request.Header.Set("X-Forwarded-For", workerIP)
			request.Header.Set("X-Real-Ip", workerIP)
			recorder := httptest.NewRecorder()
			f.server.ServeHTTP(recorder, request)

			for _, reason := range refusalReasons {
				want := 0.0
				if reason == tc.wantRefused {
					want = 1
				}
				require.Equal(t, want, testutil.ToFloat64(f.server.refused.WithLabelValues(reason)), "refused with reason %s", reason)
			}
			if tc.wantRefused == "" {
				require.Equal(t, http.StatusOK, recorder.Code, recorder.Body.String())
				require.JSONEq(t, `{"Status":200,"Message":"OK"}`, recorder.Body.String())
				require.Len(t, f.reporter.Reports(), 1)
				return
			}
			require.Equal(t, http.StatusForbidden, recorder.Code, recorder.Body.String())
			var decoded response
			require.NoError(t, json.Unmarshal(recorder.Body.Bytes(), &decoded))
			require.Equal(t, http.StatusForbidden, decoded.Status)
			if tc.wantMessage != "" {
				require.Equal(t, tc.wantMessage, decoded.Message)
			}
			require.Empty(t, f.reporter.Reports(), "a refused report must not be forwarded")
		})
	}
}

// TestUnknownOwnersNeedNoCredentials: reports about owners this node does not hold move nothing,
// so they get upstream's 200 answer whoever sends them, without revealing a refusal.
func TestUnknownOwnersNeedNoCredentials(t *testing.T) {
	f := newFixture(t, Options{})
	request := httptest.NewRequest(http.MethodPost, "/sedna/workers/edge-0/info",
		strings.NewReader(strings.Replace(jiReport, `"ownerName":"ji"`, `"ownerName":"gone"`, 1)))
	request.RemoteAddr = "203.0.113.7:1"
	recorder := httptest.NewRecorder()
	f.server.ServeHTTP(recorder, request)
	require.Equal(t, http.StatusOK, recorder.Code)
	require.JSONEq(t, `{"Status":404,"Message":"jointinferenceservice ns/gone is not bound to this node"}`, recorder.Body.String())
	require.Empty(t, f.reporter.Reports())
}

func TestRefusalsAreServedAsMetrics(t *testing.T) {
	f := newFixture(t, Options{})
	request := httptest.NewRequest(http.MethodPost, "/sedna/workers/edge-0/info", strings.NewReader(jiReport))
	request.RemoteAddr = "203.0.113.7:1"
	f.server.ServeHTTP(httptest.NewRecorder(), request)

	recorder := httptest.NewRecorder()
	f.server.ServeHTTP(recorder, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	metrics := recorder.Body.String()
	require.Contains(t, metrics, `sedna_lc_worker_api_refused_reports_total{reason="unknown_source"} 1`)
	require.Contains(t, metrics, `sedna_lc_worker_api_refused_reports_total{reason="wrong_token"} 0`)
	require.Contains(t, metrics, `sedna_lc_worker_api_dropped_reports_total{reason="outbox_full"} 0`)
	require.Contains(t, metrics, `sedna_lc_worker_api_requests_total{code="403"} 1`)
}

// TestPublishedWorkerComesFromGMNotTheBody: the LC marks a report's worker as published only
// when GM published it with the job for this node; a body saying so counts for nothing.
func TestPublishedWorkerComesFromGMNotTheBody(t *testing.T) {
	ids, err := jobIdentities(publishedJob(t, jiToken, workerauth.Worker{Pod: "ji-edge-0-abcde", Worker: "edge-0", Kind: "edge", IP: workerIP}))
	require.NoError(t, err)
	require.True(t, ids.publishes("edge-0"))
	require.False(t, ids.publishes("edge-9"))
	require.False(t, identities{}.publishes(""))

	var msg managers.WorkerMessage
	require.NoError(t, json.Unmarshal([]byte(`{"name":"edge-9","PublishedWorker":true,"publishedWorker":true}`), &msg))
	require.False(t, msg.PublishedWorker)
}
