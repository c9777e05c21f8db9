package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A store file cut short in the middle of a write (a copy truncated at every page boundary and
// in the middle of pages) must open: either whole, with every record as written, or moved aside
// with a clear error and replaced by an empty, usable store. Before the fix bbolt's panic on the
// damaged freelist page escaped Open, so the LC crashed on every start.
func TestOpenTruncatedFileNeverPanics(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lc.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	want := map[string][]byte{}
	for i := range 300 {
		key := fmt.Sprintf("k%03d", i)
		value := bytes.Repeat([]byte{byte(i)}, 200+i*7)
		require.NoError(t, s.PutState("ns", key, value))
		want[key] = value
		_, err := s.Enqueue([]byte(key))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	full, err := os.ReadFile(path)
	require.NoError(t, err)

	const page = 4096
	var sizes []int64
	for off := int64(page); off < int64(len(full)); off += 5 * page {
		sizes = append(sizes, off, off+page/2, off-1)
	}
	sizes = append(sizes, 100, 2*page+10)
	opened, quarantined := 0, 0
	for _, size := range sizes {
		cp := filepath.Join(t.TempDir(), "lc.db")
		require.NoError(t, os.WriteFile(cp, full[:size], 0o600))
		var s *Store
		require.NotPanics(t, func() { s, err = Open(cp, Options{}) }, "size %d", size)
		require.NoError(t, err, "size %d", size)
		if aside := s.Quarantined(); aside != "" {
			quarantined++
			require.True(t, strings.HasPrefix(aside, cp+quarantineSuffix), "moved to %s", aside)
			kept, err := os.ReadFile(aside)
			require.NoError(t, err)
			require.Equal(t, full[:size], kept, "the damaged file is kept as it was")
			got, err := s.ListState("ns")
			require.NoError(t, err)
			require.Empty(t, got, "size %d: a quarantined store starts empty", size)
		} else {
			opened++
			got, err := s.ListState("ns")
			require.NoError(t, err, "size %d", size)
			require.Equal(t, want, got, "size %d: a file that opens whole has every record", size)
		}
		// Usable either way.
		require.NoError(t, s.PutState("ns", "after", []byte("x")), "size %d", size)
		_, err = s.Enqueue([]byte("after"))
		require.NoError(t, err, "size %d", size)
		require.NoError(t, s.Close())
		// And it opens again as it is now, without another quarantine.
		again, err := Open(cp, Options{})
		require.NoError(t, err, "size %d", size)
		require.Empty(t, again.Quarantined(), "size %d", size)
		require.NoError(t, again.Close())
	}
	t.Logf("%d truncation points of a %d-byte file: %d opened whole, %d moved aside", len(sizes), len(full), opened, quarantined)
	require.Positive(t, quarantined, "no truncation point damaged the file; the test proves nothing")
}

// A file that is not a bbolt file at all (both meta pages invalid) is moved aside byte for
// byte and the store starts empty, rather than failing every start of the LC.
func TestOpenMovesAsideAFileThatIsNotBbolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lc.db")
	garbage := make([]byte, 8192)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	require.NoError(t, os.WriteFile(path, garbage, 0o600))
	s, err := Open(path, Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	require.NotEmpty(t, s.Quarantined())
	kept, err := os.ReadFile(s.Quarantined())
	require.NoError(t, err)
	require.Equal(t, garbage, kept)
	require.NoError(t, s.PutState("ns", "k", []byte("v")))
}
