package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// openTestStore opens a store in a fresh temporary directory and closes it at the end of the
// test unless the test closed it itself.
func openTestStore(t *testing.T, opts Options) *Store {
	t.Helper()
	return openTestStoreAt(t, filepath.Join(t.TempDir(), "lc.db"), opts)
}

func openTestStoreAt(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.db.Close() }) // Already closed by the test is fine: bbolt's Close is idempotent.
	return s
}

func TestOpenCreatesPrivateDirectoryAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "sedna")
	path := filepath.Join(dir, "lc.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	dirInfo, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), dirInfo.Mode().Perm())
	fileInfo, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fileInfo.Mode().Perm())
}

func TestOpenTightensPermissionsOfExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lc.db")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	require.NoError(t, os.Chmod(path, 0o644)) // Independent of the test process's umask.

	s := openTestStoreAt(t, path, Options{})
	require.NoError(t, s.Close())

	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestOpenSecondTimeFailsWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lc.db")
	first := openTestStoreAt(t, path, Options{})

	start := time.Now()
	second, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	require.Nil(t, second)
	require.ErrorIs(t, err, ErrLocked)
	require.ErrorIs(t, err, bolterrors.ErrTimeout)
	require.ErrorContains(t, err, "locked by another process")
	require.ErrorContains(t, err, path)
	require.GreaterOrEqual(t, elapsed, 100*time.Millisecond, "Open gave up without waiting for the lock")

	// Once the holder closes, the file opens again with its data.
	_, err = first.PutResource(Resource{Key: ResourceKey{Kind: "dataset", Namespace: "default", Name: "d"}, Version: 1, Object: []byte(`{}`)})
	require.NoError(t, err)
	require.NoError(t, first.Close())
	reopened := openTestStoreAt(t, path, Options{Timeout: 200 * time.Millisecond})
	_, found, err := reopened.GetResource(ResourceKey{Kind: "dataset", Namespace: "default", Name: "d"})
	require.NoError(t, err)
	require.True(t, found)
}

func TestOpenErrors(t *testing.T) {
	tests := map[string]struct {
		setup       func(t *testing.T) string
		wantContain string
	}{
		"empty path": {
			setup:       func(t *testing.T) string { return "" },
			wantContain: "path is empty",
		},
		"parent is a file": {
			setup: func(t *testing.T) string {
				parent := filepath.Join(t.TempDir(), "file")
				require.NoError(t, os.WriteFile(parent, []byte("x"), 0o600))
				return filepath.Join(parent, "lc.db")
			},
			wantContain: "creating its directory",
		},
		"schema from a newer binary": {
			setup: func(t *testing.T) string {
				path := filepath.Join(t.TempDir(), "lc.db")
				s := openTestStoreAt(t, path, Options{})
				require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
					return putMetaUint64(tx.Bucket(bucketMeta), metaSchema, schemaVersion+1)
				}))
				require.NoError(t, s.Close())
				return path
			},
			wantContain: "newer than this binary supports",
		},
		"damaged schema record": {
			setup: func(t *testing.T) string {
				path := filepath.Join(t.TempDir(), "lc.db")
				s := openTestStoreAt(t, path, Options{})
				require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
					return tx.Bucket(bucketMeta).Put(metaSchema, []byte{frameFormat, byte(recordMeta), 0, 0, 0, 0, 1})
				}))
				require.NoError(t, s.Close())
				return path
			},
			wantContain: `meta record "schema"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := tc.setup(t)
			s, err := Open(path, Options{Timeout: 200 * time.Millisecond})
			require.Nil(t, s)
			require.ErrorContains(t, err, tc.wantContain)
			if path != "" {
				require.ErrorContains(t, err, path)
			}
		})
	}
}

// The outbox bookkeeping is written with its entries in one transaction, so it only drifts
// after damage; Open must repair it so that numbers are not reused and the bound stays exact.
func TestOpenRepairsOutboxBookkeeping(t *testing.T) {
	tests := map[string]struct {
		damage      func(tx *bolt.Tx) error
		wantLen     int
		wantNextSeq uint64
	}{
		"sequence behind the entries": {
			damage:      func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).SetSequence(1) },
			wantLen:     5,
			wantNextSeq: 6,
		},
		"usage too high": {
			damage: func(tx *bolt.Tx) error {
				u := usage{}
				u.count[ClassOwn], u.bytes[ClassOwn] = 99, 99<<20
				return putUsage(tx.Bucket(bucketMeta), u)
			},
			wantLen:     5,
			wantNextSeq: 6,
		},
		"usage too low": {
			damage:      func(tx *bolt.Tx) error { return putUsage(tx.Bucket(bucketMeta), usage{}) },
			wantLen:     5,
			wantNextSeq: 6,
		},
		"usage damaged": {
			damage: func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(metaOutboxUsage, []byte("garbage!"))
			},
			wantLen:     5,
			wantNextSeq: 6,
		},
		"usage missing": {
			damage:      func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(metaOutboxUsage) },
			wantLen:     5,
			wantNextSeq: 6,
		},
		"left by a binary without a byte budget": {
			damage: func(tx *bolt.Tx) error {
				if err := tx.Bucket(bucketMeta).Delete(metaOutboxUsage); err != nil {
					return err
				}
				return putMetaUint64(tx.Bucket(bucketMeta), metaOutboxPending, 5)
			},
			wantLen:     5,
			wantNextSeq: 6,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lc.db")
			s := openTestStoreAt(t, path, Options{})
			for i := 0; i < 5; i++ {
				_, err := s.Enqueue([]byte("report"))
				require.NoError(t, err)
			}
			require.NoError(t, s.db.Update(tc.damage))
			require.NoError(t, s.Close())

			s = openTestStoreAt(t, path, Options{MaxOutbox: 6})
			n, err := s.OutboxLen()
			require.NoError(t, err)
			require.Equal(t, tc.wantLen, n)
			seq, err := s.Enqueue([]byte("next"))
			require.NoError(t, err)
			require.Equal(t, tc.wantNextSeq, seq)
			// The repaired count is what enforces the bound: the store now holds MaxOutbox.
			_, err = s.Enqueue([]byte("one too many"))
			require.ErrorIs(t, err, ErrOutboxFull)
		})
	}
}

func TestClosedStoreFails(t *testing.T) {
	s := openTestStore(t, Options{})
	require.NoError(t, s.Close())
	_, err := s.Enqueue([]byte("x"))
	require.ErrorIs(t, err, bolterrors.ErrDatabaseNotOpen)
	_, _, err = s.GetState("ns", "k")
	require.ErrorIs(t, err, bolterrors.ErrDatabaseNotOpen)
}
