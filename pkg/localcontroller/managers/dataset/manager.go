package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

const (
	// Kind is the channel kind of Datasets.
	Kind = "dataset"
	// SecretKind is the channel kind of the Secrets GM sends for credentialName.
	SecretKind = "secret"
	// StateNamespace is the store state namespace of the monitors' records, keyed <namespace>/<name>.
	StateNamespace = "dataset"
	// DefaultPeriod is upstream's counting period.
	DefaultPeriod = 60 * time.Second
	// DefaultMaxS3Bytes bounds an s3:// index file, which is held in memory while it is copied
	// to the scratch directory: an index lists sample paths, so this is about a million samples.
	DefaultMaxS3Bytes int64 = 64 << 20
)

// Options configure the dataset manager.
type Options struct {
	// Resolver confines host paths to the allowed data roots. Required.
	Resolver *datasetindex.Resolver
	// Rootfs is where the node's "/" is mounted in the LC (ROOTFS_MOUNT_DIR); "" means "/". Only
	// the storage client for s3:// URLs needs it: host paths go through Resolver.
	Rootfs string
	// Period between counts of one dataset; zero or negative means DefaultPeriod.
	Period time.Duration
	// Counter bounds the work of one count.
	Counter datasetindex.Options
	// MaxS3Bytes is the largest s3:// index file read; zero or negative means DefaultMaxS3Bytes.
	MaxS3Bytes int64
	// ScratchDir receives s3:// index files while they are counted; "" means os.TempDir().
	ScratchDir string
}

// Manager runs one monitor per Dataset bound to this node.
type Manager struct {
	store    *store.Store
	reporter managers.Reporter
	opts     Options

	mu       sync.Mutex
	monitors map[store.ResourceKey]*monitor
	// loops runs the monitors within Run; monitors added before Run starts wait for it.
	loops managers.LoopGroup

	// afterPass, when set (by tests, before Run), is called after every count of a monitor.
	afterPass func(key store.ResourceKey)
}

var (
	_ managers.Manager = (*Manager)(nil)
	_ managers.Runner  = (*Manager)(nil)
)

// monitor is one dataset's goroutine. Its fields are guarded by Manager.mu.
type monitor struct {
	key  store.ResourceKey
	spec monitoredSpec
	loop *managers.Loop // nil until started
}

// monitoredSpec is the part of a Dataset's spec a monitor depends on; any change restarts it.
type monitoredSpec struct {
	URL            string `json:"url"`
	Format         string `json:"format"`
	CredentialName string `json:"credentialName,omitempty"`
}

// New returns a dataset manager that reads credentials from st, records its state in st and
// queues its reports with reporter.
func New(st *store.Store, reporter managers.Reporter, opts Options) (*Manager, error) {
	switch {
	case st == nil:
		return nil, errors.New("creating the dataset manager: store is nil")
	case reporter == nil:
		return nil, errors.New("creating the dataset manager: reporter is nil")
	case opts.Resolver == nil:
		return nil, errors.New("creating the dataset manager: no Resolver for dataset host paths")
	}
	if opts.Rootfs == "" {
		opts.Rootfs = "/"
	}
	if !filepath.IsAbs(opts.Rootfs) {
		return nil, fmt.Errorf("creating the dataset manager: rootfs %q is not an absolute path", opts.Rootfs)
	}
	if opts.Period <= 0 {
		opts.Period = DefaultPeriod
	}
	if opts.MaxS3Bytes <= 0 {
		opts.MaxS3Bytes = DefaultMaxS3Bytes
	}
	if opts.ScratchDir == "" {
		opts.ScratchDir = os.TempDir()
	}
	return &Manager{store: st, reporter: reporter, opts: opts, monitors: map[store.ResourceKey]*monitor{}}, nil
}

// Kind returns "dataset".
func (m *Manager) Kind() string { return Kind }

// ResourceChanged starts the dataset's monitor, or restarts it when the spec it depends on
// changed. The same spec again (a resync, a replay after restart) changes nothing.
func (m *Manager) ResourceChanged(ctx context.Context, r store.Resource) {
	logger := klog.FromContext(ctx).WithValues("dataset", klog.KRef(r.Key.Namespace, r.Key.Name))
	if r.Key.Kind != Kind {
		logger.Error(nil, "Ignoring a resource of another kind handed to the dataset manager", "kind", r.Key.Kind)
		return
	}
	var ds sednav1.Dataset
	if err := json.Unmarshal(r.Object, &ds); err != nil {
		// The previous version's monitor, if any, keeps running: it is the last spec known to be valid.
		logger.Error(err, "Ignoring a Dataset from GM that does not parse", "version", r.Version)
		return
	}
	spec := monitoredSpec{URL: ds.Spec.URL, Format: ds.Spec.Format, CredentialName: ds.Spec.CredentialName}

	m.mu.Lock()
	defer m.mu.Unlock()
	if existing := m.monitors[r.Key]; existing != nil {
		if existing.spec == spec {
			logger.V(4).Info("Dataset spec unchanged; its monitor keeps running", "version", r.Version)
			return
		}
		logger.V(2).Info("Dataset spec changed; restarting its monitor", "version", r.Version, "url", spec.URL, "format", spec.Format)
		existing.stop()
	} else {
		logger.V(2).Info("Monitoring dataset", "version", r.Version, "url", spec.URL, "format", spec.Format)
	}
	mon := &monitor{key: r.Key, spec: spec}
	m.monitors[r.Key] = mon
	m.start(mon)
}

// ResourceDeleted stops the dataset's monitor and removes its state record.
func (m *Manager) ResourceDeleted(ctx context.Context, key store.ResourceKey) {
	logger := klog.FromContext(ctx).WithValues("dataset", klog.KRef(key.Namespace, key.Name))
	m.mu.Lock()
	defer m.mu.Unlock()
	if mon := m.monitors[key]; mon != nil {
		mon.stop()
		delete(m.monitors, key)
		logger.V(2).Info("Stopped monitoring deleted dataset")
	}
	// Under the lock, so a monitor restarted for a re-created dataset cannot read the record
	// before it is gone.
	if err := m.store.DeleteState(StateNamespace, stateKey(key)); err != nil {
		logger.Error(err, "Removing the state of a deleted dataset failed; it is replaced if the dataset comes back")
	}
}

// Run runs the monitors until ctx is done and returns once all of them have stopped. Monitors for
// datasets that arrive before Run start when Run does.
func (m *Manager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if !m.loops.Begin(ctx) {
		logger.Error(nil, "Dataset manager Run called more than once; ignoring the second call")
		return
	}
	m.mu.Lock()
	for _, mon := range m.monitors {
		m.start(mon)
	}
	m.mu.Unlock()
	logger.V(2).Info("Dataset manager running", "period", m.opts.Period)
	m.loops.End()
	logger.V(2).Info("Dataset manager stopped")
}

// start runs mon's goroutine if Run is running. Called with m.mu held.
func (m *Manager) start(mon *monitor) {
	mon.loop = m.loops.Go(func(ctx context.Context) { m.runMonitor(ctx, mon.key, mon.spec) })
}

// stop cancels the monitor and waits for its goroutine, so that no two monitors of one dataset
// ever write its record at once.
func (mon *monitor) stop() { mon.loop.Stop() }

func (m *Manager) runMonitor(ctx context.Context, key store.ResourceKey, spec monitoredSpec) {
	logger := klog.FromContext(ctx).WithValues("dataset", klog.KRef(key.Namespace, key.Name))
	ctx = klog.NewContext(ctx, logger)
	w := m.newWatch(ctx, key, spec)
	ticker := time.NewTicker(m.opts.Period)
	defer ticker.Stop()
	for {
		w.pass(ctx)
		if m.afterPass != nil {
			m.afterPass(key)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func stateKey(key store.ResourceKey) string { return key.Namespace + "/" + key.Name }
