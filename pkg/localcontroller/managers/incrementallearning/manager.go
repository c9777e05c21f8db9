package incrementallearning

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/jobstate"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/model"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

const (
	// Kind is the channel kind of IncrementalLearningJobs and the ownerKind of their workers.
	Kind = "incrementallearningjob"
	// StateNamespace is the store state namespace of the job records, keyed <namespace>/<name>.
	StateNamespace = "incrementallearningjob"
	// PoolNamespace is the store blob namespace of the jobs' sample pools, keyed as the records.
	PoolNamespace = "incrementallearningjob-pools"
	// DatasetKind is the channel kind of the Datasets the jobs read.
	DatasetKind = jobstate.DatasetKind
	// HotUpdateAnnotation is the job annotation in which GM names the host path of the inference
	// worker's model_config.json.
	HotUpdateAnnotation = "sedna.io/model-hot-update-config"
	// HotUpdateMountPath is where GM mounts the hot-update directory in the inference worker.
	HotUpdateMountPath = "/model-hot-update"
	// DefaultMaxIndexBytes bounds the dataset index file read every period.
	DefaultMaxIndexBytes int64 = 64 << 20
)

// Models is what the manager needs from the model manager (*model.Manager).
type Models interface {
	Lookup(namespace, name string) (sednav1.Model, bool)
	WriteHotUpdateConfig(hostDir string, modelPath string, updateTime time.Time) error
	RemoveHotUpdateDir(hostDir string) error
	OpenHotUpdateDir(hostDir string) (*hostfs.Root, error)
}

var _ Models = (*model.Manager)(nil)

// Options configure the incremental learning manager.
type Options struct {
	// Resolver confines reads (dataset index files, trained models) to the allowed data roots. Required.
	Resolver *datasetindex.Resolver
	// Rootfs is where the node's "/" is mounted in the LC; "" means "/".
	Rootfs string
	// WriteRoots are the host directories under which the manager may write round data, models
	// copied over a deploy Model's URL, and nothing else (spec.outputDir must lie below one). Required.
	WriteRoots []string
	// HotUpdateRoot is the host directory of the hot-update directories; "" means
	// model.DefaultHotUpdateRoot. It must be the model manager's.
	HotUpdateRoot string
	// Period, when positive, replaces every job's train trigger checkPeriodSeconds (tests).
	Period time.Duration
	// MaxIndexBytes bounds a dataset index file; zero or negative means DefaultMaxIndexBytes.
	MaxIndexBytes int64
	// Now is the clock for triggers and round times; nil means time.Now.
	Now func() time.Time
	// ResendAfter is how long GM's published status may lag behind the LC's last stage report
	// before the report is sent again; zero means DefaultResendAfter.
	ResendAfter time.Duration
	// RetryBackoff is the first wait before a blocked step (a write that failed, an index that
	// cannot be read) is tried again; zero means DefaultRetryBackoff. It doubles up to
	// MaxRetryBackoff (zero means DefaultMaxRetryBackoff).
	RetryBackoff, MaxRetryBackoff time.Duration
}

// DefaultResendAfter is generous: a GM that took a report publishes the new status within a
// second or two.
const DefaultResendAfter = 30 * time.Second

// Manager drives the rounds of the incremental learning jobs bound to this node.
type Manager struct {
	store    *store.Store
	reporter managers.Reporter
	models   Models
	files    *hostFiles
	s3       *s3Clients
	opts     Options

	// jobs are the jobs on this node; their periodic passes run within Run.
	jobs *jobstate.Jobs[*job]
}

var (
	_ managers.Manager              = (*Manager)(nil)
	_ managers.Runner               = (*Manager)(nil)
	_ managers.WorkerMessageHandler = (*Manager)(nil)
)

// New returns an incremental learning manager keeping its records in st, looking Models up and
// writing hot-update files through models and queueing reports with reporter.
func New(st *store.Store, reporter managers.Reporter, models Models, opts Options) (*Manager, error) {
	switch {
	case st == nil:
		return nil, errors.New("creating the incremental learning manager: store is nil")
	case reporter == nil:
		return nil, errors.New("creating the incremental learning manager: reporter is nil")
	case models == nil:
		return nil, errors.New("creating the incremental learning manager: model manager is nil")
	case opts.Resolver == nil:
		return nil, errors.New("creating the incremental learning manager: no Resolver for host paths")
	case len(opts.WriteRoots) == 0:
		return nil, errors.New("creating the incremental learning manager: no write roots: round data could not be written anywhere")
	}
	if opts.Rootfs == "" {
		opts.Rootfs = "/"
	}
	if !filepath.IsAbs(opts.Rootfs) {
		return nil, fmt.Errorf("creating the incremental learning manager: rootfs %q is not an absolute path", opts.Rootfs)
	}
	for _, root := range opts.WriteRoots {
		if err := checkHostPath(root); err != nil || filepath.Clean(root) != root || root == "/" {
			return nil, fmt.Errorf("creating the incremental learning manager: write root %q must be a clean absolute host directory other than /", root)
		}
	}
	if opts.HotUpdateRoot == "" {
		opts.HotUpdateRoot = model.DefaultHotUpdateRoot
	}
	if opts.MaxIndexBytes <= 0 {
		opts.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if opts.ResendAfter <= 0 {
		opts.ResendAfter = DefaultResendAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.MaxRetryBackoff <= 0 {
		opts.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	opts.MaxRetryBackoff = max(opts.MaxRetryBackoff, opts.RetryBackoff)
	return &Manager{
		store: st, reporter: reporter, models: models, opts: opts,
		files: &hostFiles{rootfs: opts.Rootfs, resolver: opts.Resolver, writeRoots: opts.WriteRoots, maxBytes: opts.MaxIndexBytes},
		s3:    &s3Clients{store: st, rootfs: opts.Rootfs},
		jobs:  jobstate.NewJobs((*job).pass),
	}, nil
}

// Kind returns "incrementallearningjob".
func (m *Manager) Kind() string { return Kind }

// ResourceChanged takes a new version of a job: its spec (triggers, dataset, models) and the
// status GM publishes, which may carry the current stage's Starting, Running or Failed.
func (m *Manager) ResourceChanged(ctx context.Context, r store.Resource) {
	logger := klog.FromContext(ctx).WithValues("job", klog.KRef(r.Key.Namespace, r.Key.Name))
	ctx = klog.NewContext(ctx, logger)
	obj, parsed, ok := jobstate.Decode(ctx, r, Kind, "incremental learning", "an IncrementalLearningJob", parseJob)
	if !ok {
		return
	}
	j := m.jobs.GetOrAdd(r.Key, func() *job { return m.newJob(r.Key) })
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.saved.Load(ctx, record{State: InitialState}); err != nil {
		logger.Error(err, "Reading the job's saved record failed; it is read again with the next version")
		return
	}
	j.spec = parsed
	j.saved.AdoptRound(ctx, obj.Status.Round)
	logger.V(4).Info("Job version taken", "version", r.Version, "state", j.rec().State.String())
	j.observeStatus(ctx, obj.Status)
	m.jobs.Start(r.Key)
}

// newJob is the job of key before its record is loaded.
func (m *Manager) newJob(key store.ResourceKey) *job {
	return &job{m: m, key: key, saved: jobstate.NewSaved[record](jobstate.Config{
		Store: m.store, Reporter: m.reporter, Now: m.opts.Now, Kind: Kind,
		StateNamespace: StateNamespace, PoolNamespace: PoolNamespace, Noun: "incremental learning",
	}, key)}
}

// ResourceDeleted stops the job, forgets its record and removes its hot-update directory.
func (m *Manager) ResourceDeleted(ctx context.Context, key store.ResourceKey) {
	logger := klog.FromContext(ctx).WithValues("job", klog.KRef(key.Namespace, key.Name))
	if j, ok := m.jobs.Remove(key); ok {
		j.mu.Lock()
		j.deleted = true
		spec := j.spec
		j.mu.Unlock()
		if spec != nil && spec.obj.Spec.DeploySpec.Model.HotUpdateEnabled {
			if err := m.models.RemoveHotUpdateDir(m.hotUpdateDir(spec.obj)); err != nil {
				logger.Error(err, "Removing the hot-update directory of a deleted job failed")
			}
		}
	}
	if err := jobstate.Forget(m.store, StateNamespace, PoolNamespace, key); err != nil {
		logger.Error(err, "Removing the record of a deleted job failed; it is replaced if the job comes back")
	}
	logger.V(2).Info("Stopped deleted incremental learning job")
}

// Run runs the jobs' periodic passes until ctx is done and returns once all of them stopped.
func (m *Manager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if !m.jobs.Run(ctx) {
		logger.Error(nil, "Incremental learning manager Run called more than once; ignoring the second call")
		return
	}
	logger.V(2).Info("Incremental learning manager stopped")
}

// HandleWorkerMessage takes a report of one of a job's workers: it forwards it to GM and drives
// the job's round with it. It returns once both are saved.
func (m *Manager) HandleWorkerMessage(ctx context.Context, msg managers.WorkerMessage) error {
	if !strings.EqualFold(msg.OwnerKind, Kind) {
		return fmt.Errorf("%w: ownerKind %q sent to the %s manager", managers.ErrInvalidMessage, msg.OwnerKind, Kind)
	}
	key := store.ResourceKey{Kind: Kind, Namespace: msg.Namespace, Name: msg.OwnerName}
	j, ok := m.jobs.Get(key)
	if !ok {
		return fmt.Errorf("%w: incremental learning job %s/%s is not on this node", managers.ErrInvalidMessage, msg.Namespace, msg.OwnerName)
	}
	logger := klog.FromContext(ctx).WithValues("job", klog.KRef(key.Namespace, key.Name), "worker", msg.Name)
	return j.handleWorkerMessage(klog.NewContext(ctx, logger), msg)
}

// hotUpdateDir is the host directory of the job's model_config.json: the one GM named in the
// job's annotation, else upstream's <root>/<ns>/incrementallearningjob/<name>, lower case.
func (m *Manager) hotUpdateDir(obj *sednav1.IncrementalLearningJob) string {
	if file := obj.Annotations[HotUpdateAnnotation]; file != "" {
		return filepath.Dir(file)
	}
	return strings.ToLower(filepath.Join(m.opts.HotUpdateRoot, obj.Namespace, Kind, obj.Name))
}
