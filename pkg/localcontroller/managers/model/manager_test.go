package model

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "lc.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

func modelObject(t *testing.T, name string, spec sednav1.ModelSpec) []byte {
	t.Helper()
	model := sednav1.Model{Spec: spec}
	model.Kind = "Model"
	model.Name, model.Namespace = name, "ns"
	object, err := json.Marshal(model)
	require.NoError(t, err)
	return object
}

func putModel(t *testing.T, st *store.Store, m *Manager, name string, version uint64, object []byte) {
	t.Helper()
	resource := store.Resource{Key: store.ResourceKey{Kind: Kind, Namespace: "ns", Name: name}, Version: version, Object: object}
	_, err := st.PutResource(resource)
	require.NoError(t, err)
	m.ResourceChanged(t.Context(), resource)
}

func TestNewValidatesOptions(t *testing.T) {
	st := openStore(t)
	tests := map[string]struct {
		st      *store.Store
		opts    Options
		wantErr string
	}{
		"no store":                 {opts: Options{}, wantErr: "store is nil"},
		"relative rootfs":          {st: st, opts: Options{Rootfs: "rootfs"}, wantErr: `rootfs "rootfs" is not an absolute path`},
		"relative hot-update root": {st: st, opts: Options{HotUpdateRoot: "var/lib"}, wantErr: "not an absolute host path"},
		"unclean hot-update root":  {st: st, opts: Options{HotUpdateRoot: "/var/lib/"}, wantErr: `not clean (want "/var/lib")`},
		"hot-update root is /":     {st: st, opts: Options{HotUpdateRoot: "/"}, wantErr: "anywhere on the node"},
		"defaults":                 {st: st},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := New(tc.st, tc.opts)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "/", m.rootfs)
			require.Equal(t, DefaultHotUpdateRoot, m.hotUpdateRoot)
			require.Equal(t, Kind, m.Kind())
		})
	}
}

func TestLookupFollowsTheStore(t *testing.T) {
	st := openStore(t)
	m, err := New(st, Options{})
	require.NoError(t, err)

	initial := sednav1.ModelSpec{URL: "/models/initial/model.pb", Format: "pb", Devices: []string{"Ascend310"}}
	putModel(t, st, m, "initial", 1, modelObject(t, "initial", initial))
	// The snake_case JSON name of the devices is upstream's.
	require.Contains(t, string(modelObject(t, "initial", initial)), `"device_soc_versions":["Ascend310"]`)

	got, found := m.Lookup("ns", "initial")
	require.True(t, found)
	require.Equal(t, initial, got.Spec)
	require.Equal(t, "initial", got.Name)

	// The caller owns the copy.
	got.Spec.Devices[0] = "changed"
	again, _ := m.Lookup("ns", "initial")
	require.Equal(t, "Ascend310", again.Spec.Devices[0])

	// A new version in the store is what Lookup returns, even before the manager hears of it.
	updated := sednav1.ModelSpec{URL: "s3://models/deploy/model.pb", Format: "pb", CredentialName: "minio"}
	_, err = st.PutResource(store.Resource{Key: store.ResourceKey{Kind: Kind, Namespace: "ns", Name: "initial"}, Version: 2, Object: modelObject(t, "initial", updated)})
	require.NoError(t, err)
	got, found = m.Lookup("ns", "initial")
	require.True(t, found)
	require.Equal(t, updated, got.Spec)

	// A Model that does not parse is as unusable as a missing one.
	putModel(t, st, m, "broken", 1, []byte(`{"spec":{"url":42}}`))
	_, found = m.Lookup("ns", "broken")
	require.False(t, found)

	_, found = m.Lookup("ns", "never-sent")
	require.False(t, found)
	_, found = m.Lookup("other", "initial")
	require.False(t, found)

	// Deleted: the store holds a tombstone and the manager forgets its copy.
	key := store.ResourceKey{Kind: Kind, Namespace: "ns", Name: "initial"}
	_, err = st.DeleteResource(key, 3)
	require.NoError(t, err)
	m.ResourceDeleted(t.Context(), key)
	_, found = m.Lookup("ns", "initial")
	require.False(t, found)
	m.mu.Lock()
	_, cached := m.parsed[key]
	m.mu.Unlock()
	require.False(t, cached)
}

func TestLookupDecodesEachVersionOnce(t *testing.T) {
	st := openStore(t)
	m, err := New(st, Options{})
	require.NoError(t, err)
	putModel(t, st, m, "m", 7, modelObject(t, "m", sednav1.ModelSpec{URL: "/models/m.pb", Format: "pb"}))

	first, found := m.Lookup("ns", "m")
	require.True(t, found)
	m.mu.Lock()
	cached := m.parsed[store.ResourceKey{Kind: Kind, Namespace: "ns", Name: "m"}]
	m.mu.Unlock()
	require.Equal(t, uint64(7), cached.version)
	require.Equal(t, first.Spec, cached.model.Spec)

	// A different kind handed over by mistake is ignored.
	m.ResourceChanged(t.Context(), store.Resource{Key: store.ResourceKey{Kind: "dataset", Namespace: "ns", Name: "m"}, Version: 8, Object: []byte(`{}`)})
	m.mu.Lock()
	require.Len(t, m.parsed, 1)
	m.mu.Unlock()
}
