package lifelonglearning

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/jobstate"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/rounds"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

const (
	// Kind is the channel kind of LifelongLearningJobs and the ownerKind of their workers.
	Kind = "lifelonglearningjob"
	// StateNamespace is the store state namespace of the job records, keyed <namespace>/<name>.
	StateNamespace = "lifelonglearningjob"
	// PoolNamespace is the store blob namespace of the jobs' sample pools, keyed as the records.
	PoolNamespace = "lifelonglearningjob-pools"
	// DatasetKind is the channel kind of the Datasets the jobs read.
	DatasetKind = jobstate.DatasetKind
	// DeployIndex is where, below spec.outputDir, the deployed KB index is copied: the inference
	// worker's MODEL_URLS (contract §2.8).
	DeployIndex = "deploy/index.pkl"
	// DefaultMaxIndexBytes bounds a dataset index file and a downloaded KB index.
	DefaultMaxIndexBytes int64 = 64 << 20
)

// Options configure the lifelong learning manager.
type Options struct {
	// Resolver confines every read and write of a host path to the allowed data roots. Required.
	Resolver *datasetindex.Resolver
	// KBServer is the knowledge base's base URL (http://host:9020); a trained index on http(s) is
	// downloaded only from below its /knowledgebase/ route. "" refuses http(s) index URLs.
	KBServer string
	// KBToken, when set, is presented to the KB as "Authorization: Bearer <token>".
	KBToken string
	// HTTPClient downloads indexes from the KB; nil means a client with a 60 s timeout.
	HTTPClient *http.Client
	// Period, when positive, replaces every job's train trigger checkPeriodSeconds (tests).
	Period time.Duration
	// MaxIndexBytes bounds a dataset index file and a KB index; zero means DefaultMaxIndexBytes.
	MaxIndexBytes int64
	// Now is the clock for triggers and round times; nil means time.Now.
	Now func() time.Time
	// ResendAfter is how long GM's published status may lag behind the LC's last stage report
	// before the report is sent again; zero means DefaultResendAfter.
	ResendAfter time.Duration
}

// DefaultResendAfter is generous: a GM that took a report publishes the new status within a
// second or two.
const DefaultResendAfter = 30 * time.Second

// Manager drives the rounds of the lifelong learning jobs bound to this node.
type Manager struct {
	store    *store.Store
	reporter managers.Reporter
	opts     Options

	// jobs are the jobs on this node; their periodic passes run within Run.
	jobs *jobstate.Jobs[*job]
}

var (
	_ managers.Manager              = (*Manager)(nil)
	_ managers.Runner               = (*Manager)(nil)
	_ managers.WorkerMessageHandler = (*Manager)(nil)
)

// New returns a lifelong learning manager keeping its records in st and queueing reports with
// reporter.
func New(st *store.Store, reporter managers.Reporter, opts Options) (*Manager, error) {
	switch {
	case st == nil:
		return nil, errors.New("creating the lifelong learning manager: store is nil")
	case reporter == nil:
		return nil, errors.New("creating the lifelong learning manager: reporter is nil")
	case opts.Resolver == nil:
		return nil, errors.New("creating the lifelong learning manager: no Resolver for host paths")
	}
	if opts.KBServer != "" && !strings.HasPrefix(opts.KBServer, "http://") && !strings.HasPrefix(opts.KBServer, "https://") {
		return nil, fmt.Errorf("creating the lifelong learning manager: KB server %q is not an http(s) URL", opts.KBServer)
	}
	if opts.MaxIndexBytes <= 0 {
		opts.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ResendAfter <= 0 {
		opts.ResendAfter = DefaultResendAfter
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	return &Manager{store: st, reporter: reporter, opts: opts, jobs: jobstate.NewJobs((*job).pass)}, nil
}

// Kind returns "lifelonglearningjob".
func (m *Manager) Kind() string { return Kind }

// ResourceChanged takes a new version of a job: its spec and the status GM publishes, which may
// carry the current stage's Starting, Running or Failed.
func (m *Manager) ResourceChanged(ctx context.Context, r store.Resource) {
	logger := klog.FromContext(ctx).WithValues("job", klog.KRef(r.Key.Namespace, r.Key.Name))
	ctx = klog.NewContext(ctx, logger)
	obj, parsed, ok := jobstate.Decode(ctx, r, Kind, "lifelong learning", "a LifelongLearningJob", parseJob)
	if !ok {
		return
	}
	j := m.jobs.GetOrAdd(r.Key, func() *job { return m.newJob(r.Key) })
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.saved.Load(ctx, record{State: rounds.InitialState}); err != nil {
		logger.Error(err, "Reading the job's saved record failed; it is read again with the next version")
		return
	}
	j.spec = parsed
	j.saved.AdoptRound(ctx, obj.Status.Round)
	j.observeStatus(ctx, obj.Status)
	m.jobs.Start(r.Key)
}

// newJob is the job of key before its record is loaded.
func (m *Manager) newJob(key store.ResourceKey) *job {
	return &job{m: m, key: key, saved: jobstate.NewSaved[record](jobstate.Config{
		Store: m.store, Reporter: m.reporter, Now: m.opts.Now, Kind: Kind,
		StateNamespace: StateNamespace, PoolNamespace: PoolNamespace, Noun: "lifelong learning",
	}, key)}
}

// ResourceDeleted stops the job and forgets its record.
func (m *Manager) ResourceDeleted(ctx context.Context, key store.ResourceKey) {
	logger := klog.FromContext(ctx).WithValues("job", klog.KRef(key.Namespace, key.Name))
	if j, ok := m.jobs.Remove(key); ok {
		j.mu.Lock()
		j.deleted = true
		j.mu.Unlock()
	}
	if err := jobstate.Forget(m.store, StateNamespace, PoolNamespace, key); err != nil {
		logger.Error(err, "Removing the record of a deleted job failed; it is replaced if the job comes back")
	}
	logger.V(2).Info("Stopped deleted lifelong learning job")
}

// Run runs the jobs' periodic passes until ctx is done and returns once all of them stopped.
func (m *Manager) Run(ctx context.Context) {
	if !m.jobs.Run(ctx) {
		klog.FromContext(ctx).Error(nil, "Lifelong learning manager Run called more than once; ignoring the second call")
	}
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
		return fmt.Errorf("%w: lifelong learning job %s/%s is not on this node", managers.ErrInvalidMessage, msg.Namespace, msg.OwnerName)
	}
	logger := klog.FromContext(ctx).WithValues("job", klog.KRef(key.Namespace, key.Name), "worker", msg.Name)
	return j.handleWorkerMessage(klog.NewContext(ctx, logger), msg)
}
