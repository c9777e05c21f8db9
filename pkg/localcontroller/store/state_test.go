package store

import (
	"testing"

	"github.com/stretchr/testify/require"
)

type stateOp struct {
	namespace, key string
	value          []byte // nil with delete set means DeleteState
	delete         bool
}

func TestStateRecords(t *testing.T) {
	tests := map[string]struct {
		ops []stateOp
		// want is ListState per namespace afterwards.
		want map[string]map[string][]byte
	}{
		"put then list": {
			ops: []stateOp{
				{namespace: "dataset", key: "default/d1", value: []byte(`{"numberOfSamples":10}`)},
				{namespace: "dataset", key: "default/d2", value: []byte(`{"numberOfSamples":0}`)},
			},
			want: map[string]map[string][]byte{
				"dataset": {"default/d1": []byte(`{"numberOfSamples":10}`), "default/d2": []byte(`{"numberOfSamples":0}`)},
			},
		},
		"put replaces": {
			ops: []stateOp{
				{namespace: "ilstage", key: "j", value: []byte("train")},
				{namespace: "ilstage", key: "j", value: []byte("eval")},
			},
			want: map[string]map[string][]byte{"ilstage": {"j": []byte("eval")}},
		},
		"delete removes and is idempotent": {
			ops: []stateOp{
				{namespace: "ilstage", key: "j", value: []byte("train")},
				{namespace: "ilstage", key: "k", value: []byte("eval")},
				{namespace: "ilstage", key: "j", delete: true},
				{namespace: "ilstage", key: "j", delete: true},
				{namespace: "ilstage", key: "never", delete: true},
			},
			want: map[string]map[string][]byte{"ilstage": {"k": []byte("eval")}},
		},
		"namespaces are isolated even when names overlap": {
			ops: []stateOp{
				{namespace: "a", key: "b/c", value: []byte("1")},
				{namespace: "a/b", key: "c", value: []byte("2")},
				{namespace: "a\x00", key: "b", value: []byte("3")},
				{namespace: "a", key: "\x00b", value: []byte("4")},
				{namespace: "ab", key: "c", value: []byte("5")},
			},
			want: map[string]map[string][]byte{
				"a":     {"b/c": []byte("1"), "\x00b": []byte("4")},
				"a/b":   {"c": []byte("2")},
				"a\x00": {"b": []byte("3")},
				"ab":    {"c": []byte("5")},
				"x":     {},
			},
		},
		"empty value is stored": {
			ops:  []stateOp{{namespace: "model", key: "m", value: nil}},
			want: map[string]map[string][]byte{"model": {"m": {}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openTestStore(t, Options{})
			for _, op := range tc.ops {
				if op.delete {
					require.NoError(t, s.DeleteState(op.namespace, op.key))
				} else {
					require.NoError(t, s.PutState(op.namespace, op.key, op.value))
				}
			}
			for namespace, want := range tc.want {
				got, err := s.ListState(namespace)
				require.NoError(t, err)
				require.Equal(t, want, got, "namespace %q", namespace)
				for key, value := range want {
					single, found, err := s.GetState(namespace, key)
					require.NoError(t, err)
					require.True(t, found, "%q/%q", namespace, key)
					require.Equal(t, value, single)
				}
			}
		})
	}
}

func TestStateMissingAndInvalid(t *testing.T) {
	s := openTestStore(t, Options{})
	value, found, err := s.GetState("dataset", "missing")
	require.NoError(t, err)
	require.False(t, found)
	require.Nil(t, value)

	tests := map[string]struct {
		namespace, key string
		wantContain    string
	}{
		"empty namespace": {namespace: "", key: "k", wantContain: "namespace is empty"},
		"empty key":       {namespace: "dataset", key: "", wantContain: `key in namespace "dataset" is empty`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.ErrorContains(t, s.PutState(tc.namespace, tc.key, []byte("v")), tc.wantContain)
			_, _, err := s.GetState(tc.namespace, tc.key)
			require.ErrorContains(t, err, tc.wantContain)
			require.ErrorContains(t, s.DeleteState(tc.namespace, tc.key), tc.wantContain)
		})
	}
	_, err = s.ListState("")
	require.ErrorContains(t, err, "namespace is empty")
}

func TestStateSurvivesReopen(t *testing.T) {
	s := openTestStore(t, Options{})
	path := s.Path()
	require.NoError(t, s.PutState("trigger", "default/job", []byte(`{"lastFired":"x"}`)))
	require.NoError(t, s.Close())

	s = openTestStoreAt(t, path, Options{})
	got, found, err := s.GetState("trigger", "default/job")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, []byte(`{"lastFired":"x"}`), got)
}
