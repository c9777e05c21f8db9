package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Kind is the channel kind of Models.
const Kind = "model"

// DefaultHotUpdateRoot is the host directory under which GM places the hot-update directories of
// inference workers (upstream's /var/lib/sedna/model-hot-update/<ns>/<kind>/<name>/).
const DefaultHotUpdateRoot = "/var/lib/sedna/model-hot-update"

// Options configure the model manager.
type Options struct {
	// Rootfs is where the node's "/" is mounted in the LC (ROOTFS_MOUNT_DIR); "" means "/".
	Rootfs string
	// HotUpdateRoot is the host directory hot-update files may be written under; "" means
	// DefaultHotUpdateRoot. The directory a job names must lie below it, so a job cannot make the
	// LC write a file anywhere else on the node.
	HotUpdateRoot string
	// Logger receives what Lookup cannot return as an error; a logger without a sink means
	// klog.Background().
	Logger klog.Logger
}

// Manager keeps the node's Models. It is safe for concurrent use.
type Manager struct {
	store         *store.Store
	rootfs        string
	hotUpdateRoot string
	logger        klog.Logger

	mu sync.Mutex
	// parsed caches the decoded Model per stored version, so lookups from the learning managers'
	// loops do not decode the same JSON every few seconds.
	parsed map[store.ResourceKey]parsedModel
}

type parsedModel struct {
	version uint64
	model   *sednav1.Model // nil when that version does not parse
}

var _ managers.Manager = (*Manager)(nil)

// New returns a model manager reading Models from st.
func New(st *store.Store, opts Options) (*Manager, error) {
	if st == nil {
		return nil, errors.New("creating the model manager: store is nil")
	}
	rootfs, hotUpdateRoot, err := checkRoots(opts.Rootfs, opts.HotUpdateRoot)
	if err != nil {
		return nil, fmt.Errorf("creating the model manager: %w", err)
	}
	logger := opts.Logger
	if logger.GetSink() == nil {
		logger = klog.Background()
	}
	return &Manager{
		store:         st,
		rootfs:        rootfs,
		hotUpdateRoot: hotUpdateRoot,
		logger:        logger.WithValues("manager", Kind),
		parsed:        map[store.ResourceKey]parsedModel{},
	}, nil
}

// Kind returns "model".
func (m *Manager) Kind() string { return Kind }

// ResourceChanged decodes the new version, so a Model that does not parse is reported when it
// arrives rather than when a job first needs it.
func (m *Manager) ResourceChanged(ctx context.Context, r store.Resource) {
	logger := klog.FromContext(ctx).WithValues("model", klog.KRef(r.Key.Namespace, r.Key.Name))
	if r.Key.Kind != Kind {
		logger.Error(nil, "Ignoring a resource of another kind handed to the model manager", "kind", r.Key.Kind)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if model := m.decodeLocked(logger, r); model != nil {
		logger.V(2).Info("Model available on this node", "version", r.Version, "url", model.Spec.URL, "format", model.Spec.Format)
	}
}

// ResourceDeleted drops the cached copy; the store no longer has the Model either.
func (m *Manager) ResourceDeleted(ctx context.Context, key store.ResourceKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.parsed, key)
	klog.FromContext(ctx).V(2).Info("Model removed from this node", "model", klog.KRef(key.Namespace, key.Name))
}

// Lookup returns the Model namespace/name as GM last sent it, and whether this node has it. The
// result is a copy the caller may modify. A Model that cannot be read or decoded is logged and
// reported as absent: to the caller it is as unusable as a missing one.
func (m *Manager) Lookup(namespace, name string) (sednav1.Model, bool) {
	key := store.ResourceKey{Kind: Kind, Namespace: namespace, Name: name}
	logger := m.logger.WithValues("model", klog.KRef(namespace, name))
	resource, found, err := m.store.GetResource(key)
	if err != nil {
		logger.Error(err, "Reading the model from the local store failed")
		return sednav1.Model{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !found {
		delete(m.parsed, key)
		return sednav1.Model{}, false
	}
	model := m.decodeLocked(logger, resource)
	if model == nil {
		return sednav1.Model{}, false
	}
	return *model.DeepCopy(), true
}

// decodeLocked returns the decoded Model of r, from the cache when r's version was decoded
// before. Called with m.mu held.
func (m *Manager) decodeLocked(logger klog.Logger, r store.Resource) *sednav1.Model {
	if cached, ok := m.parsed[r.Key]; ok && cached.version == r.Version {
		return cached.model
	}
	var model sednav1.Model
	if err := json.Unmarshal(r.Object, &model); err != nil {
		// Cached as unusable so the error is logged once per version, not on every Lookup.
		logger.Error(err, "Model from GM does not parse; jobs referring to it wait for a valid version", "version", r.Version)
		m.parsed[r.Key] = parsedModel{version: r.Version}
		return nil
	}
	m.parsed[r.Key] = parsedModel{version: r.Version, model: &model}
	return &model
}
