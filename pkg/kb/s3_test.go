package kb

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage/s3test"
)

// TestS3FilesSurviveARestart keeps the files on a real S3 server (versitygw): what is uploaded
// lands below the prefix, and a server restarted on the same data directory and prefix serves
// the files and answers queries from the index.
func TestS3FilesSurviveARestart(t *testing.T) {
	server := s3test.Start(t, "sedna-kb")
	client, err := storage.New("/", &storage.Credentials{Endpoint: server.Endpoint, AccessKeyID: server.AccessKey, SecretAccessKey: server.SecretKey})
	require.NoError(t, err)
	files, err := NewS3Store(client, server.URL("kb/"))
	require.NoError(t, err)

	kb := &testKB{t: t, dir: t.TempDir(), opts: Options{Compat: true}}
	kb.start(files)
	model := []byte("model on s3")
	require.Equal(t, http.StatusOK, kb.upload("", "left.model", model).status)
	require.Equal(t, string(model), server.Get(t, "kb/left.model"))
	pickle := []byte("\x80\x04joblib")
	require.Equal(t, http.StatusOK, kb.update("", pickle).status)
	require.Equal(t, string(pickle), server.Get(t, "kb/index.pkl"))
	require.Equal(t, http.StatusOK, kb.update("", mustJSON(t, twoTaskIndex())).status)

	kb.restart()
	require.Equal(t, model, kb.download("", "/file/download?files=left.model").body)
	require.Equal(t, pickle, kb.download("", "/file/download?files=index.pkl").body)
	require.Equal(t, http.StatusNotFound, kb.download("", "/file/download?files=missing").status)
	answer := kb.query("", QueryRequest{Features: [][]float64{{10, 0}, {-10, 1}}})
	require.Equal(t, http.StatusOK, answer.status, string(answer.body))
	var response QueryResponse
	require.NoError(t, json.Unmarshal(answer.body, &response))
	require.Len(t, response.Results, 2)
	require.Equal(t, "right", response.Results[0].Task, "the JSON index survives the restart, not only the files")
	require.Equal(t, "left", response.Results[1].Task)

	_, err = NewS3Store(client, "/not/s3/")
	require.ErrorContains(t, err, "must be an s3:// URL")
}
