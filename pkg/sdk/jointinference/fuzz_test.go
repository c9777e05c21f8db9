package jointinference

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzPredictBody feeds arbitrary request bodies to the cloud server: every
// answer must be 200 with a result or a JSON error, never a panic.
func FuzzPredictBody(f *testing.F) {
	f.Add(`{"data":[1,2,3],"callback":null}`)
	f.Add(`{"data":null}`)
	f.Add(`{"data":"fail"}`)
	f.Add(`[1,2]`)
	f.Add(``)
	server, err := NewServer(ServerOptions{Job: "sedna", Predictor: echoPredictor, MaxBodyBytes: 1 << 10})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, body string) {
		recorder := httptest.NewRecorder()
		server.ServeHTTP(recorder, httptest.NewRequest(http.MethodPost, "/sedna/predict", strings.NewReader(body)))
		var answer map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(recorder.Body.Bytes(), &answer), "answer %q is not JSON", recorder.Body.String())
		if recorder.Code == http.StatusOK {
			require.Contains(t, answer, "result")
		} else {
			require.Contains(t, answer, "error")
		}
	})
}
