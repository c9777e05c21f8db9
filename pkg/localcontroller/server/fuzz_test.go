package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
)

// FuzzWorkerReport posts arbitrary bodies for arbitrary worker names through the whole handler,
// from the published pod IP of workers edge-0 and fl-train-1. Whatever arrives, the handler must
// not panic and must answer upstream's JSON shape; it may answer HTTP 400 only for bodies
// upstream's LC could not read either (or a name differing from the path), and it forwards a
// report (answering "OK") only for a valid message about ns/ji or ns/fl from one of their
// workers, exactly once.
func FuzzWorkerReport(f *testing.F) {
	f.Add("edge-0", []byte(jiReport))
	f.Add("fl-train-1", []byte(`{"name":"fl-train-1","namespace":"ns","ownerName":"fl","ownerKind":"federatedlearningjob","kind":"train","status":"completed","results":[{"format":"pb","url":"/m","metrics":{"acc":[0.9]}}]}`))
	f.Add("edge-0", []byte(`{"name":"edge-0","namespace":"ns","ownerName":"ji","ownerKind":"JointInferenceService","kind":"inference","ownerInfo":{"n":1e400}}`))
	f.Add("edge-0", []byte(`{"name":"edge-0","namespace":"ns","ownerName":"ji","ownerKind":"jointinferenceservice"} trailing`))
	f.Add("edge-0", []byte(`null`))
	f.Add("edge-0", []byte(`[]`))
	f.Add("edge-0", []byte(`{"name":"edge-0","namespace":"ns","ownerName":"ji","ownerKind":"jointinferenceservice","results":[null,{"a":{"b":[1,2,{"c":null}]}}]}`))
	f.Add("edge-0", []byte("{\"name\":\"edge-0\",\"namespace\":\"ns\xff\",\"ownerName\":\"ji\",\"ownerKind\":\"jointinferenceservice\"}"))
	f.Add("a/b", []byte(`{"name":"a/b","namespace":"ns","ownerName":"ji","ownerKind":"jointinferenceservice"}`))
	f.Add("", []byte(``))
	f.Add("edge-1", []byte(strings.ReplaceAll(jiReport, "edge-0", "edge-1")))
	f.Add("edge-0", []byte(`{"name":"edge-0"}`))

	fx := newFixture(f, Options{MaxBodyBytes: 64 << 10})
	f.Fuzz(func(t *testing.T, worker string, body []byte) {
		if worker == "" || worker == "." || worker == ".." {
			// The path would be cleaned and redirected, never reaching the handler.
			return
		}
		before := len(fx.reporter.Reports())
		request := httptest.NewRequest(http.MethodPost, "/sedna/workers/"+url.PathEscape(worker)+"/info", bytes.NewReader(body))
		recorder := httptest.NewRecorder()
		fx.server.ServeHTTP(recorder, request)

		if recorder.Code >= 300 && recorder.Code < 400 {
			// The mux redirects paths it cleans (a worker named "a/../b"); nothing is handled.
			require.Len(t, fx.reporter.Reports(), before)
			return
		}
		var answer response
		require.NoError(t, json.Unmarshal(recorder.Body.Bytes(), &answer), "response %q", recorder.Body.String())
		require.NotEmpty(t, answer.Message)
		if recorder.Code == http.StatusNotFound {
			// A worker name the mux does not route to the report handler ("/").
			require.Len(t, fx.reporter.Reports(), before)
			require.Contains(t, answer.Message, "no endpoint")
			return
		}
		require.Contains(t, []int{http.StatusOK, http.StatusBadRequest, http.StatusForbidden}, recorder.Code)
		if recorder.Code != http.StatusOK {
			require.Equal(t, recorder.Code, answer.Status)
		}
		if recorder.Code == http.StatusBadRequest {
			// Only what upstream's LC could not read either, or a name differing from the path.
			var readable managers.WorkerMessage
			decoder := json.NewDecoder(bytes.NewReader(body))
			decoder.UseNumber()
			if json.Valid(body) && decoder.Decode(&readable) == nil && !decoder.More() && readable.Name == worker {
				t.Fatalf("HTTP 400 for a readable body from the path's worker: %q", answer.Message)
			}
		}
		reports := fx.reporter.Reports()
		if recorder.Code != http.StatusOK || answer.Status != http.StatusOK || answer.Message != "OK" {
			require.Len(t, reports, before, "a refused or dropped report must not be forwarded")
			return
		}

		// Forwarded: the body must be one valid message about ns/ji or ns/fl from this worker.
		require.True(t, json.Valid(body))
		var msg managers.WorkerMessage
		decoder := json.NewDecoder(bytes.NewReader(body))
		decoder.UseNumber()
		require.NoError(t, decoder.Decode(&msg))
		require.Equal(t, worker, msg.Name)
		require.Equal(t, "ns", msg.Namespace)
		owner := strings.ToLower(msg.OwnerKind) + "/" + msg.OwnerName
		require.Contains(t, []string{"jointinferenceservice/ji/edge-0", "federatedlearningjob/fl/fl-train-1"}, owner+"/"+worker)
		require.Len(t, reports, before+1)
		require.Equal(t, strings.ToLower(msg.OwnerKind), reports[before].Key.Kind)
		require.True(t, json.Valid(reports[before].Content), "forwarded content %q", reports[before].Content)
	})
}

// FuzzParseWorkerMessage checks the parser on its own: no panic, and an accepted message always
// has its required fields, the path's name and a lower-case kind.
func FuzzParseWorkerMessage(f *testing.F) {
	f.Add("edge-0", []byte(jiReport))
	f.Add("w", []byte(`{"name":"w","namespace":"n","ownerName":"o","ownerKind":"K"}`))
	f.Add("w", []byte(`{"name":"w","namespace":"n","ownerName":"o","ownerKind":"k","ownerInfo":{"x":[1,"2",{"3":null}]}}`))
	f.Add("w", []byte(`{"name":1}`))
	f.Add("w", []byte("\x00"))
	f.Fuzz(func(t *testing.T, worker string, body []byte) {
		msg, err := parseWorkerMessage(worker, body)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		require.True(t, json.Valid(body))
		require.Equal(t, worker, msg.Name)
		require.NotEmpty(t, msg.Namespace)
		require.NotEmpty(t, msg.OwnerName)
		require.NotEmpty(t, msg.OwnerKind)
		require.Equal(t, strings.ToLower(msg.OwnerKind), msg.OwnerKind)
		_, err = managers.EncodeForwardedReport(msg)
		require.NoError(t, err, "a parsed message can always be forwarded")
	})
}

// FuzzWorkerAuth sends a valid report about ns/ji as worker edge-0 with arbitrary Authorization
// headers from arbitrary peer addresses. It is forwarded exactly when the header is one "Bearer"
// with the job's token, or there is no header and the peer is edge-0's published pod IP; any
// other request is refused with 403 and forwards nothing.
func FuzzWorkerAuth(f *testing.F) {
	f.Add(true, "Bearer "+jiToken, "192.0.2.9:1234")
	f.Add(true, "bearer "+jiToken, "[2001:db8::1]:80")
	f.Add(true, "Bearer "+jiToken+"x", workerIP+":1234")
	f.Add(true, "Bearer  "+jiToken, workerIP+":1234")
	f.Add(true, "Basic ZWRnZTpwdw==", workerIP+":1234")
	f.Add(true, "Bearer", workerIP+":1234")
	f.Add(true, "", workerIP+":1234")
	f.Add(false, "", workerIP+":1234")
	f.Add(false, "", "[::ffff:192.0.2.1]:1234")
	f.Add(false, "", otherWorkerIP+":1234")
	f.Add(false, "", "192.0.2.1")
	f.Add(false, "", "not an address")

	fx := newFixture(f, Options{})
	f.Fuzz(func(t *testing.T, withHeader bool, authorization, remoteAddr string) {
		before := len(fx.reporter.Reports())
		request := httptest.NewRequest(http.MethodPost, "/sedna/workers/edge-0/info", strings.NewReader(jiReport))
		request.RemoteAddr = remoteAddr
		if withHeader {
			request.Header.Set("Authorization", authorization)
		}
		recorder := httptest.NewRecorder()
		fx.server.ServeHTTP(recorder, request)

		var answer response
		require.NoError(t, json.Unmarshal(recorder.Body.Bytes(), &answer), "response %q", recorder.Body.String())
		require.Equal(t, recorder.Code, answer.Status)
		scheme, token, _ := strings.Cut(authorization, " ")
		var fromWorker bool
		if peer, err := netip.ParseAddrPort(remoteAddr); err == nil {
			fromWorker = peer.Addr().Unmap() == netip.MustParseAddr(workerIP)
		}
		allowed := withHeader && strings.EqualFold(scheme, "Bearer") && token == jiToken || !withHeader && fromWorker
		if !allowed {
			require.Equal(t, http.StatusForbidden, recorder.Code, "message %q", answer.Message)
			require.Len(t, fx.reporter.Reports(), before)
			return
		}
		require.Equal(t, http.StatusOK, recorder.Code, "message %q", answer.Message)
		require.Equal(t, "OK", answer.Message)
		require.Len(t, fx.reporter.Reports(), before+1)
	})
}

// FuzzBearerToken checks the Authorization parser on its own: no panic, and a token it returns is
// exactly what follows "Bearer " in the one header, non-empty, bounded and free of separators.
func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer abc-._~+/==", "")
	f.Add("BEARER x", "Bearer y")
	f.Add("Bearer a b", "")
	f.Add("Bearer =", "")
	f.Add("Bearer "+strings.Repeat("a", maxTokenLength+1), "")
	f.Add("Token abc", "")
	f.Fuzz(func(t *testing.T, first, second string) {
		header := http.Header{}
		header.Add("Authorization", first)
		if second != "" {
			header.Add("Authorization", second)
		}
		token, present, err := bearerToken(header)
		require.True(t, present)
		if err != nil {
			require.Empty(t, token)
			return
		}
		require.Empty(t, second)
		require.NotEmpty(t, token)
		require.LessOrEqual(t, len(token), maxTokenLength)
		require.True(t, strings.EqualFold(first, "Bearer "+token))
		require.False(t, strings.ContainsAny(token, " \t\r\n,;\"\x00"))
	})
}
