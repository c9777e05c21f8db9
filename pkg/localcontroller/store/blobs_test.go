package store

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteStatesAppliesAllOrNothing(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "lc.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.NoError(t, s.PutState("ns", "gone", []byte("old")))

	require.NoError(t, s.WriteStates(
		StateWrite{Namespace: "ns", Key: "a", Value: []byte("1")},
		StateWrite{Namespace: "other", Key: "a", Value: []byte("2")},
		StateWrite{Namespace: "ns", Key: "gone", Delete: true},
		StateWrite{Namespace: "ns", Key: "a", Value: []byte("blob"), Blob: true},
	))
	blob, found, err := s.GetBlob("ns", "a")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "blob", string(blob))
	for _, want := range []struct{ ns, key, value string }{{"ns", "a", "1"}, {"other", "a", "2"}} {
		value, found, err := s.GetState(want.ns, want.key)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, want.value, string(value))
	}
	_, found, err = s.GetState("ns", "gone")
	require.NoError(t, err)
	require.False(t, found)

	// An invalid write refuses the whole batch before anything is stored.
	err = s.WriteStates(StateWrite{Namespace: "ns", Key: "b", Value: []byte("x")}, StateWrite{Namespace: "ns"})
	require.ErrorContains(t, err, "state key in namespace \"ns\" is empty")
	_, found, err = s.GetState("ns", "b")
	require.NoError(t, err)
	require.False(t, found)
}

func TestBlobsAreApartFromStateRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lc.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	_, found, err := s.GetBlob("ns", "k")
	require.NoError(t, err)
	require.False(t, found, "a store without the blob bucket has no blobs")

	require.NoError(t, s.PutBlob("ns", "k", []byte("large")))
	require.NoError(t, s.PutState("ns", "k", []byte("small")))
	blob, found, err := s.GetBlob("ns", "k")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "large", string(blob))
	state, _, err := s.GetState("ns", "k")
	require.NoError(t, err)
	require.Equal(t, "small", string(state))
	records, err := s.ListState("ns")
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"k": []byte("small")}, records, "blobs are not state records")

	require.NoError(t, s.Close())
	s, err = Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	blob, found, err = s.GetBlob("ns", "k")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "large", string(blob))
	require.NoError(t, s.WriteStates(StateWrite{Namespace: "ns", Key: "k", Blob: true, Delete: true}))
	_, found, err = s.GetBlob("ns", "k")
	require.NoError(t, err)
	require.False(t, found)
}
