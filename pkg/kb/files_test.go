package kb

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Concurrent Puts of one name each write their own temporary file: whichever rename comes last
// wins, and the stored file is always one complete upload, never a mix of both.
func TestDirStoreConcurrentPutsOfOneName(t *testing.T) {
	d, err := NewDirStore(t.TempDir())
	require.NoError(t, err)
	defer func() { require.NoError(t, d.Close()) }()
	ctx := context.Background()
	uploads := [][]byte{bytes.Repeat([]byte("A"), 2<<20), bytes.Repeat([]byte("B"), 2<<20), bytes.Repeat([]byte("C"), 2<<20)}
	for round := 0; round < 10; round++ {
		var wg sync.WaitGroup
		errs := make([]error, len(uploads))
		for i, content := range uploads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = d.Put(ctx, "model.bin", chunkedReader{bytes.NewReader(content)}, int64(len(content)))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "round %d, writer %d", round, i)
		}
		reader, _, err := d.Open(ctx, "model.bin")
		require.NoError(t, err)
		got, err := io.ReadAll(reader)
		require.NoError(t, err)
		require.NoError(t, reader.Close())
		require.True(t, bytes.Equal(got, uploads[0]) || bytes.Equal(got, uploads[1]) || bytes.Equal(got, uploads[2]),
			"round %d: the stored file (%d bytes) is none of the uploads", round, len(got))
	}
}

// A temporary file a crash left behind is removed when the store opens; stored files stay.
func TestDirStoreRemovesStaleTemporariesOnOpen(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".model.bin.tmp-0123456789abcdef"), []byte("half"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.bin"), []byte("whole"), 0o600))
	d, err := NewDirStore(dir)
	require.NoError(t, err)
	require.NoError(t, d.Close())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "model.bin", entries[0].Name())
}

// chunkedReader hands out at most 64 KiB per Read so concurrent writers interleave.
type chunkedReader struct{ r io.Reader }

func (c chunkedReader) Read(p []byte) (int, error) {
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	return c.r.Read(p)
}
