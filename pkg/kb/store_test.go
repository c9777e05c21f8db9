package kb

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A crash between writing index.json and recording the index in kb.db leaves the file newer than
// the database, which queries answer from. Opening the store rewrites the file from the
// database, so what is downloaded and what is queried never disagree.
func TestOpenRewritesTheIndexFileFromTheDatabase(t *testing.T) {
	kb := newTestKB(t, Options{Compat: true})
	require.Equal(t, http.StatusOK, kb.update("", mustJSON(t, twoTaskIndex())).status)
	recorded := kb.download("", "/file/download?files="+JSONIndexFile)
	require.Equal(t, http.StatusOK, recorded.status)

	other := twoTaskIndex()
	other.Tasks = other.Tasks[:1]
	require.NoError(t, os.WriteFile(filepath.Join(kb.dir, "files", JSONIndexFile), mustJSON(t, other), 0o600))
	kb.restart()
	require.Equal(t, recorded.body, kb.download("", "/file/download?files="+JSONIndexFile).body)

	require.NoError(t, os.Remove(filepath.Join(kb.dir, "files", JSONIndexFile)))
	kb.restart()
	require.Equal(t, recorded.body, kb.download("", "/file/download?files="+JSONIndexFile).body)
}
