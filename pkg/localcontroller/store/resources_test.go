package store

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

var (
	keyA = ResourceKey{Kind: "dataset", Namespace: "default", Name: "a"}
	keyB = ResourceKey{Kind: "dataset", Namespace: "default", Name: "b"}
	keyM = ResourceKey{Kind: "model", Namespace: "default", Name: "m"}
	keyJ = ResourceKey{Kind: "incrementallearningjob", Namespace: "edge", Name: "helmet"}
)

// resourceOp is one call in a versioning scenario.
type resourceOp struct {
	delete      bool
	key         ResourceKey
	version     uint64
	object      string
	wantChanged bool
}

func put(key ResourceKey, version uint64, object string, wantChanged bool) resourceOp {
	return resourceOp{key: key, version: version, object: object, wantChanged: wantChanged}
}

func del(key ResourceKey, version uint64, wantChanged bool) resourceOp {
	return resourceOp{delete: true, key: key, version: version, wantChanged: wantChanged}
}

func TestResourceVersioning(t *testing.T) {
	tests := map[string]struct {
		ops []resourceOp
		// want is the live state of keyA afterwards; nil means not found.
		want *Resource
	}{
		"first put stores": {
			ops:  []resourceOp{put(keyA, 3, `{"v":3}`, true)},
			want: &Resource{Key: keyA, Version: 3, Object: []byte(`{"v":3}`)},
		},
		"newer put replaces": {
			ops:  []resourceOp{put(keyA, 3, `{"v":3}`, true), put(keyA, 4, `{"v":4}`, true)},
			want: &Resource{Key: keyA, Version: 4, Object: []byte(`{"v":4}`)},
		},
		"stale put ignored": {
			ops:  []resourceOp{put(keyA, 4, `{"v":4}`, true), put(keyA, 3, `{"v":3}`, false)},
			want: &Resource{Key: keyA, Version: 4, Object: []byte(`{"v":4}`)},
		},
		"equal version is a no-op even with other content": {
			ops:  []resourceOp{put(keyA, 4, `{"v":4}`, true), put(keyA, 4, `{"v":"other"}`, false)},
			want: &Resource{Key: keyA, Version: 4, Object: []byte(`{"v":4}`)},
		},
		"replayed frame changes nothing": {
			ops:  []resourceOp{put(keyA, 4, `{"v":4}`, true), put(keyA, 4, `{"v":4}`, false), put(keyA, 4, `{"v":4}`, false)},
			want: &Resource{Key: keyA, Version: 4, Object: []byte(`{"v":4}`)},
		},
		"delete removes": {
			ops: []resourceOp{put(keyA, 4, `{}`, true), del(keyA, 5, true)},
		},
		"delete of the stored version removes": {
			ops: []resourceOp{put(keyA, 4, `{}`, true), del(keyA, 4, true)},
		},
		"stale delete ignored": {
			ops:  []resourceOp{put(keyA, 6, `{"v":6}`, true), del(keyA, 5, false)},
			want: &Resource{Key: keyA, Version: 6, Object: []byte(`{"v":6}`)},
		},
		"replayed delete changes nothing": {
			ops: []resourceOp{put(keyA, 4, `{}`, true), del(keyA, 5, true), del(keyA, 5, false)},
		},
		"tombstone blocks stale insert": {
			ops: []resourceOp{put(keyA, 4, `{}`, true), del(keyA, 5, true), put(keyA, 4, `{"v":4}`, false)},
		},
		"tombstone blocks insert of equal version": {
			ops: []resourceOp{del(keyA, 5, false), put(keyA, 5, `{"v":5}`, false)},
		},
		"delete before any insert still blocks the late insert": {
			ops: []resourceOp{del(keyA, 7, false), put(keyA, 6, `{"v":6}`, false)},
		},
		"insert newer than tombstone resurrects": {
			ops:  []resourceOp{put(keyA, 4, `{}`, true), del(keyA, 5, true), put(keyA, 6, `{"v":6}`, true)},
			want: &Resource{Key: keyA, Version: 6, Object: []byte(`{"v":6}`)},
		},
		"newer delete replaces older tombstone": {
			ops: []resourceOp{del(keyA, 5, false), del(keyA, 8, false), put(keyA, 7, `{"v":7}`, false)},
		},
		"other keys are independent": {
			ops: []resourceOp{
				put(keyA, 1, `{"a":1}`, true),
				put(keyB, 9, `{"b":9}`, true),
				del(keyB, 10, true),
				put(keyM, 100, `{}`, true),
				put(keyA, 2, `{"a":2}`, true),
			},
			want: &Resource{Key: keyA, Version: 2, Object: []byte(`{"a":2}`)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openTestStore(t, Options{})
			for i, op := range tc.ops {
				var (
					changed bool
					err     error
				)
				if op.delete {
					changed, err = s.DeleteResource(op.key, op.version)
				} else {
					changed, err = s.PutResource(Resource{Key: op.key, Version: op.version, Object: []byte(op.object)})
				}
				require.NoError(t, err, "op %d", i)
				require.Equal(t, op.wantChanged, changed, "op %d: %+v", i, op)
			}
			got, found, err := s.GetResource(keyA)
			require.NoError(t, err)
			if tc.want == nil {
				require.False(t, found, "got %+v", got)
				return
			}
			require.True(t, found)
			require.Equal(t, *tc.want, got)
		})
	}
}

func TestResourceKeyValidation(t *testing.T) {
	tests := map[string]struct {
		key         ResourceKey
		wantContain string
	}{
		"empty kind":         {key: ResourceKey{Namespace: "default", Name: "a"}, wantContain: "empty kind"},
		"capitalised kind":   {key: ResourceKey{Kind: "Dataset", Namespace: "default", Name: "a"}, wantContain: "not lowercase"},
		"empty name":         {key: ResourceKey{Kind: "dataset", Namespace: "default"}, wantContain: "empty name"},
		"cluster scoped key": {key: ResourceKey{Kind: "dataset", Name: "a"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openTestStore(t, Options{})
			_, putErr := s.PutResource(Resource{Key: tc.key, Version: 1, Object: []byte(`{}`)})
			_, _, getErr := s.GetResource(tc.key)
			_, delErr := s.DeleteResource(tc.key, 2)
			if tc.wantContain == "" {
				require.NoError(t, putErr)
				require.NoError(t, getErr)
				require.NoError(t, delErr)
				return
			}
			for _, err := range []error{putErr, getErr, delErr} {
				require.ErrorContains(t, err, tc.wantContain)
			}
		})
	}
}

// Keys whose parts contain the separator or NUL bytes must stay distinct records.
func TestResourceKeysDoNotCollide(t *testing.T) {
	keys := []ResourceKey{
		{Kind: "dataset", Namespace: "a/b", Name: "c"},
		{Kind: "dataset", Namespace: "a", Name: "b/c"},
		{Kind: "dataset/a", Namespace: "b", Name: "c"},
		{Kind: "dataset", Namespace: "a\x00", Name: "b"},
		{Kind: "dataset", Namespace: "a", Name: "\x00b"},
		{Kind: "dataset", Namespace: "a\x00\x01", Name: "b"},
		{Kind: "dataset", Namespace: "a", Name: "\x00\x01b"},
		{Kind: "dataset", Namespace: "", Name: "a\x00\x01b"},
		{Kind: "dataset\x00\x01", Namespace: "", Name: "b"},
	}
	s := openTestStore(t, Options{})
	for i, key := range keys {
		changed, err := s.PutResource(Resource{Key: key, Version: 1, Object: []byte{byte('0' + i)}})
		require.NoError(t, err)
		require.True(t, changed, "key %q collided with an earlier one", key)
	}
	for i, key := range keys {
		got, found, err := s.GetResource(key)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, []byte{byte('0' + i)}, got.Object, "key %q", key)
	}
	all, err := s.ListResources("")
	require.NoError(t, err)
	require.Len(t, all, len(keys))
	for _, r := range all {
		require.Contains(t, keys, r.Key, "listed a key that was never stored")
	}
}

func TestListResources(t *testing.T) {
	s := openTestStore(t, Options{})
	for _, r := range []Resource{
		{Key: keyM, Version: 1, Object: []byte(`"m"`)},
		{Key: keyB, Version: 2, Object: []byte(`"b"`)},
		{Key: keyJ, Version: 3, Object: []byte(`"j"`)},
		{Key: keyA, Version: 4, Object: []byte(`"a"`)},
		{Key: ResourceKey{Kind: "dataset", Namespace: "ab", Name: "a"}, Version: 5, Object: []byte(`"ab"`)},
		// A kind that has "dataset" as a prefix must not show up in the dataset listing.
		{Key: ResourceKey{Kind: "datasetx", Namespace: "default", Name: "x"}, Version: 6, Object: []byte(`"x"`)},
		{Key: ResourceKey{Kind: "dataset", Namespace: "default", Name: "gone"}, Version: 7, Object: []byte(`"gone"`)},
	} {
		_, err := s.PutResource(r)
		require.NoError(t, err)
	}
	_, err := s.DeleteResource(ResourceKey{Kind: "dataset", Namespace: "default", Name: "gone"}, 8)
	require.NoError(t, err)

	tests := map[string]struct {
		kind string
		want []string
	}{
		"all kinds sorted by kind, namespace, name": {
			kind: "",
			want: []string{"dataset/ab/a", "dataset/default/a", "dataset/default/b", "datasetx/default/x", "incrementallearningjob/edge/helmet", "model/default/m"},
		},
		"one kind":     {kind: "dataset", want: []string{"dataset/ab/a", "dataset/default/a", "dataset/default/b"}},
		"other kind":   {kind: "model", want: []string{"model/default/m"}},
		"unknown kind": {kind: "federatedlearningjob", want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := s.ListResources(tc.kind)
			require.NoError(t, err)
			var keys []string
			for _, r := range got {
				keys = append(keys, r.Key.String())
			}
			require.Equal(t, tc.want, keys)
		})
	}
}

func TestPruneExcept(t *testing.T) {
	tests := map[string]struct {
		setup   []resourceOp
		present map[ResourceKey]uint64
		// wantRemoved in key order.
		wantRemoved []ResourceKey
		wantLeft    []ResourceKey
	}{
		"removes what the snapshot lacks": {
			setup:       []resourceOp{put(keyA, 1, `{}`, true), put(keyB, 1, `{}`, true), put(keyM, 1, `{}`, true)},
			present:     map[ResourceKey]uint64{keyB: 1},
			wantRemoved: []ResourceKey{keyA, keyM},
			wantLeft:    []ResourceKey{keyB},
		},
		"keeps everything present": {
			setup:    []resourceOp{put(keyA, 1, `{}`, true), put(keyJ, 1, `{}`, true)},
			present:  map[ResourceKey]uint64{keyA: 1, keyJ: 2, keyM: 5},
			wantLeft: []ResourceKey{keyA, keyJ},
		},
		"empty snapshot removes all": {
			setup:       []resourceOp{put(keyA, 1, `{}`, true), put(keyJ, 1, `{}`, true)},
			present:     nil,
			wantRemoved: []ResourceKey{keyA, keyJ},
		},
		"tombstones are dropped but not reported": {
			setup:       []resourceOp{put(keyA, 1, `{}`, true), del(keyA, 2, true), del(keyB, 9, false), put(keyM, 1, `{}`, true)},
			present:     map[ResourceKey]uint64{keyA: 3},
			wantRemoved: []ResourceKey{keyM},
		},
		"empty store": {
			present: map[ResourceKey]uint64{keyA: 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openTestStore(t, Options{})
			for _, op := range tc.setup {
				if op.delete {
					_, err := s.DeleteResource(op.key, op.version)
					require.NoError(t, err)
				} else {
					_, err := s.PutResource(Resource{Key: op.key, Version: op.version, Object: []byte(op.object)})
					require.NoError(t, err)
				}
			}
			removed, err := s.PruneExcept(tc.present)
			require.NoError(t, err)
			require.Equal(t, tc.wantRemoved, removed)

			left, err := s.ListResources("")
			require.NoError(t, err)
			var leftKeys []ResourceKey
			for _, r := range left {
				leftKeys = append(leftKeys, r.Key)
			}
			require.Equal(t, tc.wantLeft, leftKeys)

			// No tombstone survives: an insert at version 1 is accepted for every key that is
			// not live, even those deleted at a higher version before the snapshot.
			for _, key := range []ResourceKey{keyA, keyB, keyM, keyJ} {
				if _, live, _ := s.GetResource(key); live {
					continue
				}
				changed, err := s.PutResource(Resource{Key: key, Version: 1, Object: []byte(`{}`)})
				require.NoError(t, err)
				require.True(t, changed, "a tombstone for %s survived the prune", key)
			}
		})
	}
}

func TestResourcesSurviveReopen(t *testing.T) {
	s := openTestStore(t, Options{})
	path := s.Path()
	_, err := s.PutResource(Resource{Key: keyA, Version: 7, Object: []byte(`{"spec":{}}`)})
	require.NoError(t, err)
	_, err = s.DeleteResource(keyB, 9)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = openTestStoreAt(t, path, Options{})
	got, found, err := s.GetResource(keyA)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, Resource{Key: keyA, Version: 7, Object: []byte(`{"spec":{}}`)}, got)
	changed, err := s.PutResource(Resource{Key: keyB, Version: 8, Object: []byte(`{}`)})
	require.NoError(t, err)
	require.False(t, changed, "the tombstone did not survive the restart")
}

// Values handed out must stay valid after the transaction ends and must not alias each other
// or the store: a caller mutating one must not change what the store returns next.
func TestReturnedValuesAreCopies(t *testing.T) {
	s := openTestStore(t, Options{})
	// Enough data that the resources bucket gets pages of its own: a small bucket is stored
	// inline and bbolt may hand out heap copies of it, which would hide a missing copy here.
	_, err := s.PutResource(Resource{Key: keyB, Version: 1, Object: bytes.Repeat([]byte("b"), 8192)})
	require.NoError(t, err)
	object := []byte(`{"a":1}`)
	_, err = s.PutResource(Resource{Key: keyA, Version: 1, Object: object})
	require.NoError(t, err)
	object[2] = 'X' // The caller reusing its buffer must not reach the store.

	first, _, err := s.GetResource(keyA)
	require.NoError(t, err)
	first.Object[2] = 'Y'
	// Grow the file so bbolt remaps it; stale slices into the old map would fault or change.
	for i := 0; i < 200; i++ {
		_, err := s.Enqueue(make([]byte, 4096))
		require.NoError(t, err)
	}
	second, _, err := s.GetResource(keyA)
	require.NoError(t, err)
	require.Equal(t, []byte(`{"a":1}`), second.Object)
	require.Equal(t, byte('Y'), first.Object[2])
}

// committedTxID is the ID of the store's last committed write transaction.
func committedTxID(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }))
	return id
}

// A snapshot replayed on a reconnect (the same versions, nothing to prune) commits no write
// transaction, so it costs the node no fsync; anything that does change still commits.
func TestAReplayedSnapshotCommitsNothing(t *testing.T) {
	s := openTestStore(t, Options{})
	for _, r := range []Resource{{Key: keyA, Version: 2, Object: []byte(`{"a":2}`)}, {Key: keyJ, Version: 1, Object: []byte(`{}`)}} {
		changed, err := s.PutResource(r)
		require.NoError(t, err)
		require.True(t, changed)
	}
	_, err := s.DeleteResource(keyM, 3)
	require.NoError(t, err)
	present := map[ResourceKey]uint64{keyA: 2, keyJ: 1}
	// The first snapshot drops keyM's tombstone: a write.
	before := committedTxID(t, s)
	removed, err := s.PruneExcept(present)
	require.NoError(t, err)
	require.Empty(t, removed)
	require.Equal(t, before+1, committedTxID(t, s), "dropping a tombstone commits")

	// The replay: the same versions, or older ones, and a prune with nothing to do.
	before = committedTxID(t, s)
	for _, r := range []Resource{{Key: keyA, Version: 2, Object: []byte(`{"a":2}`)}, {Key: keyA, Version: 1, Object: []byte(`{"a":1}`)}, {Key: keyJ, Version: 1, Object: []byte(`{}`)}} {
		changed, err := s.PutResource(r)
		require.NoError(t, err)
		require.False(t, changed)
	}
	removed, err = s.PruneExcept(present)
	require.NoError(t, err)
	require.Empty(t, removed)
	require.Equal(t, before, committedTxID(t, s), "a replayed snapshot committed a write")
	got, live, err := s.GetResource(keyA)
	require.NoError(t, err)
	require.True(t, live)
	require.Equal(t, uint64(2), got.Version)

	// A newer version and a prune that removes something still write.
	changed, err := s.PutResource(Resource{Key: keyA, Version: 3, Object: []byte(`{"a":3}`)})
	require.NoError(t, err)
	require.True(t, changed)
	removed, err = s.PruneExcept(map[ResourceKey]uint64{keyA: 3})
	require.NoError(t, err)
	require.Equal(t, []ResourceKey{keyJ}, removed)
	require.Equal(t, before+2, committedTxID(t, s))

	// A damaged record is not taken for a replay: the write replaces it.
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketResources).Put(keyA.encode(), []byte{0xff})
	}))
	changed, err = s.PutResource(Resource{Key: keyA, Version: 1, Object: []byte(`{"a":1}`)})
	require.NoError(t, err)
	require.True(t, changed, "a damaged record blocked the snapshot's write")
}
