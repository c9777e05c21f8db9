package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
)

// FuzzWorkerReport posts arbitrary bodies for arbitrary worker names through the whole handler.
// Whatever arrives, the handler must not panic, must answer upstream's JSON shape, and may answer
// 200 only for a valid message about the one owner bound to this node, which is then forwarded
// exactly once.
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
		require.Equal(t, recorder.Code, answer.Status)
		require.NotEmpty(t, answer.Message)
		reports := fx.reporter.Reports()
		if recorder.Code != http.StatusOK {
			require.Len(t, reports, before, "a refused report must not be forwarded")
			return
		}

		// 200: the body must be one valid message about ns/ji or ns/fl from this worker.
		require.True(t, json.Valid(body))
		var msg managers.WorkerMessage
		decoder := json.NewDecoder(bytes.NewReader(body))
		decoder.UseNumber()
		require.NoError(t, decoder.Decode(&msg))
		require.Equal(t, worker, msg.Name)
		require.Equal(t, "ns", msg.Namespace)
		owner := strings.ToLower(msg.OwnerKind) + "/" + msg.OwnerName
		require.Contains(t, []string{"jointinferenceservice/ji", "federatedlearningjob/fl"}, owner)
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
