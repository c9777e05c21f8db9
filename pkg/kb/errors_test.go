package kb

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
)

// A fault of the server (here: its scratch directory is gone) is a 500 with a fixed message, not
// a 400 that tells the client a server path; a broken body is still the client's 400.
func TestServerFaultsAre500WithoutPaths(t *testing.T) {
	dir := t.TempDir()
	files, err := NewDirStore(filepath.Join(dir, "files"))
	require.NoError(t, err)
	store, err := OpenStore(dir, files)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	scratch := filepath.Join(dir, "gone")
	server, err := NewServer(Options{Store: store, Compat: true, ScratchDir: scratch, Logger: logr.Discard()})
	require.NoError(t, err)
	kb := &testKB{t: t, dir: dir, handler: server}

	failed := kb.upload("", "m.bin", []byte("x"))
	require.Equal(t, http.StatusInternalServerError, failed.status, string(failed.body))
	require.NotContains(t, string(failed.body), dir)
	require.Equal(t, "the knowledge base failed to serve the request", failed.detail(t))

	contentType, body := multipartBody(t, "file", "m.bin", []byte("content"))
	healthy := newTestKB(t, Options{Compat: true})
	truncated := healthy.do(http.MethodPost, Prefix+RouteFileUpload, "", contentType, body[:len(body)-20])
	require.Equal(t, http.StatusBadRequest, truncated.status, string(truncated.body))
}
