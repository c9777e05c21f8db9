package managers

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// recordingManager records what the Dispatcher hands it.
type recordingManager struct {
	kind string

	mu      sync.Mutex
	changed []store.Resource
	deleted []store.ResourceKey
}

func (m *recordingManager) Kind() string { return m.kind }

func (m *recordingManager) ResourceChanged(_ context.Context, r store.Resource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed = append(m.changed, r)
}

func (m *recordingManager) ResourceDeleted(_ context.Context, key store.ResourceKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleted = append(m.deleted, key)
}

// runningManager is a Runner that records that it ran and until when.
type runningManager struct {
	recordingManager
	started chan struct{}
	stopped chan struct{}
}

func (m *runningManager) Run(ctx context.Context) {
	close(m.started)
	<-ctx.Done()
	close(m.stopped)
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "lc.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

func TestNewDispatcherRefusesAmbiguousKinds(t *testing.T) {
	tests := map[string]struct {
		managers []Manager
		wantErr  string
	}{
		"nil manager":        {managers: []Manager{nil}, wantErr: "a manager is nil"},
		"empty kind":         {managers: []Manager{&recordingManager{}}, wantErr: "empty kind"},
		"upper-case kind":    {managers: []Manager{&recordingManager{kind: "Dataset"}}, wantErr: `kind "Dataset"`},
		"kind claimed twice": {managers: []Manager{&recordingManager{kind: "dataset"}, &recordingManager{kind: "dataset"}}, wantErr: `kind "dataset" is claimed by both`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewDispatcher(tc.managers...)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestDispatcherRoutesResourcesByKind(t *testing.T) {
	datasets := &recordingManager{kind: "dataset"}
	models := &recordingManager{kind: "model"}
	d, err := NewDispatcher(datasets, models)
	require.NoError(t, err)
	require.Equal(t, []string{"dataset", "model"}, d.Kinds())
	ctx := t.Context()

	ds := store.Resource{Key: store.ResourceKey{Kind: "dataset", Namespace: "ns", Name: "d"}, Version: 3, Object: []byte(`{}`)}
	model := store.Resource{Key: store.ResourceKey{Kind: "model", Namespace: "ns", Name: "m"}, Version: 4, Object: []byte(`{}`)}
	secret := store.Resource{Key: store.ResourceKey{Kind: "secret", Namespace: "ns", Name: "s"}, Version: 5, Object: []byte(`{}`)}
	d.ResourceChanged(ctx, ds)
	d.ResourceChanged(ctx, model)
	d.ResourceChanged(ctx, secret)
	d.ResourceDeleted(ctx, ds.Key)
	d.ResourceDeleted(ctx, secret.Key)

	require.Equal(t, []store.Resource{ds}, datasets.changed)
	require.Equal(t, []store.ResourceKey{ds.Key}, datasets.deleted)
	require.Equal(t, []store.Resource{model}, models.changed)
	require.Empty(t, models.deleted)
}

func TestDispatcherRoutesWorkerMessages(t *testing.T) {
	reporter := &fakeReporter{}
	forwarder, err := NewForwarder(KindJointInferenceService, reporter)
	require.NoError(t, err)
	d, err := NewDispatcher(forwarder, &recordingManager{kind: "dataset"})
	require.NoError(t, err)

	tests := map[string]struct {
		ownerKind   string
		wantHandler bool
	}{
		"lower case":                            {ownerKind: "jointinferenceservice", wantHandler: true},
		"upstream compared kinds in lower case": {ownerKind: "JointInferenceService", wantHandler: true},
		"manager without worker messages":       {ownerKind: "dataset"},
		"kind without a manager":                {ownerKind: "reidjob"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ok := d.WorkerMessageHandler(tc.ownerKind)
			require.Equal(t, tc.wantHandler, ok)
			err := d.HandleWorkerMessage(t.Context(), WorkerMessage{Name: "w", Namespace: "ns", OwnerName: "ji", OwnerKind: tc.ownerKind})
			if tc.wantHandler {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrNoManager)
				require.ErrorContains(t, err, tc.ownerKind)
			}
		})
	}
}

func TestReplayHandsStoredResourcesToTheirManagers(t *testing.T) {
	st := openStore(t)
	live := store.Resource{Key: store.ResourceKey{Kind: "dataset", Namespace: "ns", Name: "live"}, Version: 2, Object: []byte(`{"a":1}`)}
	gone := store.Resource{Key: store.ResourceKey{Kind: "dataset", Namespace: "ns", Name: "gone"}, Version: 2, Object: []byte(`{"a":2}`)}
	secret := store.Resource{Key: store.ResourceKey{Kind: "secret", Namespace: "ns", Name: "s"}, Version: 1, Object: []byte(`{}`)}
	for _, r := range []store.Resource{live, gone, secret} {
		_, err := st.PutResource(r)
		require.NoError(t, err)
	}
	_, err := st.DeleteResource(gone.Key, 3)
	require.NoError(t, err)

	datasets := &recordingManager{kind: "dataset"}
	d, err := NewDispatcher(datasets)
	require.NoError(t, err)
	require.NoError(t, d.Replay(t.Context(), st))
	require.Equal(t, []store.Resource{live}, datasets.changed)
}

func TestRunRunsRunnersUntilCancelled(t *testing.T) {
	runner := &runningManager{recordingManager: recordingManager{kind: "dataset"}, started: make(chan struct{}), stopped: make(chan struct{})}
	d, err := NewDispatcher(runner, &recordingManager{kind: "model"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	returned := make(chan struct{})
	go func() {
		d.Run(ctx)
		close(returned)
	}()
	<-runner.started
	select {
	case <-returned:
		t.Fatal("Run returned before its context was cancelled")
	default:
	}
	cancel()
	<-returned
	select {
	case <-runner.stopped:
	default:
		t.Fatal("Run returned before the runner did")
	}
}

// fakeReporter records reports; this package cannot import managertest (which imports it).
type fakeReporter struct {
	mu      sync.Mutex
	err     error
	reports []string
	keys    []string
}

func (r *fakeReporter) Report(_ context.Context, key channel.Key, content []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.keys = append(r.keys, key.String())
	r.reports = append(r.reports, string(content))
	return nil
}

var errCommit = errors.New("commit failed")

// snapshotManager counts the snapshots it was told of.
type snapshotManager struct {
	recordingManager
	snapshots int
}

func (m *snapshotManager) SnapshotApplied(context.Context) { m.snapshots++ }

func TestDispatcherTellsSnapshotObserversOfASnapshot(t *testing.T) {
	observer := &snapshotManager{recordingManager: recordingManager{kind: "federatedlearningjob"}}
	other := &recordingManager{kind: "dataset"}
	d, err := NewDispatcher(other, observer)
	require.NoError(t, err)
	d.SnapshotApplied(t.Context())
	d.SnapshotApplied(t.Context())
	require.Equal(t, 2, observer.snapshots)
}
