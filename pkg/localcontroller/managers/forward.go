package managers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Kinds whose LC side only relays worker reports.
const (
	KindJointInferenceService    = "jointinferenceservice"
	KindFederatedLearningJob     = "federatedlearningjob"
	KindVideoAnalyticsJob        = "videoanalyticsjob"
	KindFeatureExtractionService = "featureextractionservice"
	KindReidJob                  = "reidjob"
	KindObjectSearchService      = "objectsearchservice"
	KindObjectTrackingService    = "objecttrackingservice"
)

// ForwardedKinds are the kinds the LC relays worker reports of, one Forwarder each: joint
// inference, federated learning and the multi-edge kinds. GM publishes each of them with its
// workers to the nodes they run on, so their reports pass the worker API's checks.
var ForwardedKinds = []string{
	KindJointInferenceService, KindFederatedLearningJob, KindVideoAnalyticsJob, KindFeatureExtractionService,
	KindReidJob, KindObjectSearchService, KindObjectTrackingService,
}

// Forwarder is the manager of a feature whose LC side only relays worker reports to GM: joint
// inference (edge inference counters) and federated learning (training rounds). The resources of
// its kind need no local work; the store keeps them so the HTTP API can tell a job this node runs
// from a report about something else.
//
// Reports are relayed as worker reports, which may take only their share of the outbox (see
// store.Class), so a worker flooding the LC cannot crowd out the LC's own stage reports. A
// report with status "running" or none (joint inference counters, a federated training round in
// progress) carries the worker's latest cumulative state: it replaces the queued report of the
// same owner, worker and phase (its stream) instead of queuing behind it. Any other status is an
// event (completed, failed, ready) and is queued as it is, never coalesced.
//
// When the outbox refuses a report, the Forwarder counts it against the owner; every later
// report about the owner carries the count as "dropped" (see EncodeForwardedReport) so GM can
// tell the user.
//
// For federated learning the Forwarder also keeps each worker's newest report about each job and
// queues it again after every snapshot from GM (SnapshotApplied). GM acknowledges a report once
// it has taken it, but shows it only at the job's next status write; a GM killed in between takes
// the report's effect with it, and a trainer's last report is never followed by another that
// would repair it. Every GM that starts or takes over sends each node a snapshot first, so the
// newest reports reach it again. GM folds training reports in by round, so a report it has seen
// changes nothing. Joint inference and the multi-edge kinds do not: their reports are counted
// events or cumulative counters the next report repeats.
type Forwarder struct {
	kind     string
	reporter Reporter
	// resendNewest says whether the kind's newest reports are queued again after a snapshot.
	resendNewest bool

	mu sync.Mutex
	// dropped counts, per owner, the reports refused because the outbox was full since this
	// process started. Forgotten when the owner is deleted.
	dropped map[channel.Key]uint64
	// held is, when resendNewest, the UID of each owner the node holds (from ResourceChanged,
	// which the LC's replay also calls at start, and ResourceDeleted).
	held map[channel.Key]string
	// newest holds, when resendNewest, the newest queued training report of each published
	// worker about each held owner, with the owner's UID: bounded by what GM published, and
	// forgotten when the owner is deleted or replaced by another of the same name. Kept in
	// memory: an LC that restarts has sent them to the GM that was alive then.
	newest map[newestKey]newestReport
}

// newestKey names a worker's stream of reports about an owner.
type newestKey struct {
	owner  channel.Key
	worker string
}

// newestReport is a queued report and the UID of the owner it was about.
type newestReport struct {
	uid     string
	content []byte
}

// resentPhase is the phase of the reports the Forwarder resends: a federated trainer's round.
const resentPhase = "train"

// OutboxReporter is a Reporter that also queues a report with its outbox class and stream
// (see store.EnqueueOptions). The Forwarder uses it when its reporter implements it; the LC's
// reporter does. An error wrapping store.ErrOutboxFull means the report did not fit.
type OutboxReporter interface {
	Reporter
	ReportAs(ctx context.Context, key channel.Key, content []byte, opts store.EnqueueOptions) error
}

var (
	_ Manager              = (*Forwarder)(nil)
	_ WorkerMessageHandler = (*Forwarder)(nil)
	_ SnapshotObserver     = (*Forwarder)(nil)
)

// NewForwarder returns a Forwarder for the lower-case kind.
func NewForwarder(kind string, reporter Reporter) (*Forwarder, error) {
	if kind == "" || kind != strings.ToLower(kind) {
		return nil, fmt.Errorf("creating a forwarding manager: kind %q must be non-empty and lower case", kind)
	}
	if reporter == nil {
		return nil, fmt.Errorf("creating a forwarding manager for %s: reporter is nil", kind)
	}
	return &Forwarder{
		kind: kind, reporter: reporter, dropped: map[channel.Key]uint64{},
		resendNewest: kind == KindFederatedLearningJob, held: map[channel.Key]string{}, newest: map[newestKey]newestReport{},
	}, nil
}

// Kind returns the kind the Forwarder was made for.
func (f *Forwarder) Kind() string { return f.kind }

// ResourceChanged notes, for the kinds that resend, the owner's UID (a job deleted and created
// again under its name is another owner: the newest reports about the old one are forgotten);
// there is no local work to start.
func (f *Forwarder) ResourceChanged(ctx context.Context, r store.Resource) {
	if f.resendNewest {
		var object struct {
			Metadata struct {
				UID string `json:"uid"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(r.Object, &object) // an object that does not say is held with no UID
		owner := channel.Key{Kind: r.Key.Kind, Namespace: r.Key.Namespace, Name: r.Key.Name}
		f.mu.Lock()
		f.held[owner] = object.Metadata.UID
		for k, report := range f.newest {
			if k.owner == owner && report.uid != object.Metadata.UID {
				delete(f.newest, k)
			}
		}
		f.mu.Unlock()
	}
	klog.FromContext(ctx).V(4).Info("Resource stored; worker reports about it will be forwarded", "resource", r.Key.String(), "version", r.Version)
}

// ResourceDeleted forgets the owner's count of dropped reports; there is no local work to stop.
func (f *Forwarder) ResourceDeleted(ctx context.Context, key store.ResourceKey) {
	owner := channel.Key{Kind: key.Kind, Namespace: key.Namespace, Name: key.Name}
	f.mu.Lock()
	delete(f.dropped, owner)
	delete(f.held, owner)
	for k := range f.newest {
		if k.owner == owner {
			delete(f.newest, k)
		}
	}
	f.mu.Unlock()
	klog.FromContext(ctx).V(4).Info("Resource deleted; its worker reports are no longer accepted", "resource", key.String())
}

// HandleWorkerMessage queues msg for GM as a report about its owner, in upstream's forwarded
// shape, and returns once the report is durably queued. A report the outbox has no room for
// fails with an error wrapping store.ErrOutboxFull and is counted as dropped.
func (f *Forwarder) HandleWorkerMessage(ctx context.Context, msg WorkerMessage) error {
	if !strings.EqualFold(msg.OwnerKind, f.kind) {
		return fmt.Errorf("%w: ownerKind %q sent to the %s manager", ErrInvalidMessage, msg.OwnerKind, f.kind)
	}
	key := channel.Key{Kind: f.kind, Namespace: msg.Namespace, Name: msg.OwnerName}
	f.mu.Lock()
	dropped := f.dropped[key]
	f.mu.Unlock()
	content, err := encodeForwardedReport(msg, dropped)
	if err != nil {
		return err
	}
	opts := forwardOptions(key, msg)
	if outbox, ok := f.reporter.(OutboxReporter); ok {
		err = outbox.ReportAs(ctx, key, content, opts)
	} else {
		err = f.reporter.Report(ctx, key, content)
	}
	if err != nil {
		if errors.Is(err, store.ErrOutboxFull) {
			f.mu.Lock()
			f.dropped[key]++
			dropped = f.dropped[key]
			f.mu.Unlock()
			// A flooding worker must not flood the log too: the 1st, 2nd, 4th, 8th... drop per
			// owner are logged; the metric sedna_lc_outbox_rejected_total counts them all.
			logger := klog.FromContext(ctx)
			if dropped&(dropped-1) != 0 {
				logger = logger.V(4)
			}
			logger.Info("Dropped a worker report: the outbox is full", "owner", key.String(), "worker", msg.Name,
				"phase", msg.Kind, "status", msg.Status, "class", opts.Class.String(), "droppedForOwner", dropped, "err", err)
		}
		return fmt.Errorf("queueing the report of worker %s about %s for GM: %w", msg.Name, key, err)
	}
	if f.resendNewest && msg.PublishedWorker && strings.EqualFold(msg.Kind, resentPhase) {
		f.mu.Lock()
		if uid, held := f.held[key]; held {
			f.newest[newestKey{owner: key, worker: msg.Name}] = newestReport{uid: uid, content: content}
		}
		f.mu.Unlock()
	}
	klog.FromContext(ctx).V(4).Info("Forwarded worker report", "owner", key.String(), "worker", msg.Name, "phase", msg.Kind, "status", msg.Status, "class", opts.Class.String())
	return nil
}

// SnapshotApplied queues again, for the kinds that resend (see Forwarder), the newest training
// report of every published worker about every owner the node still holds, for the GM that sent
// the snapshot. They go as events, never coalesced: an older copy must not replace a newer report
// still queued. A report the outbox refuses now is logged and kept for the next snapshot.
func (f *Forwarder) SnapshotApplied(ctx context.Context) {
	if !f.resendNewest {
		return
	}
	f.mu.Lock()
	type resend struct {
		key     newestKey
		content []byte
	}
	resends := make([]resend, 0, len(f.newest))
	for k, report := range f.newest {
		if uid, held := f.held[k.owner]; !held || uid != report.uid {
			delete(f.newest, k) // queued after its owner went
			continue
		}
		resends = append(resends, resend{key: k, content: report.content})
	}
	f.mu.Unlock()
	logger := klog.FromContext(ctx)
	queued := 0
	for _, r := range resends {
		var err error
		if outbox, ok := f.reporter.(OutboxReporter); ok {
			err = outbox.ReportAs(ctx, r.key.owner, r.content, store.EnqueueOptions{Class: store.ClassWorkerEvent})
		} else {
			err = f.reporter.Report(ctx, r.key.owner, r.content)
		}
		if err != nil {
			logger.Error(err, "Queueing a worker's newest report again for GM failed; it is kept for the next snapshot",
				"owner", r.key.owner.String(), "worker", r.key.worker)
			continue
		}
		queued++
	}
	if queued > 0 {
		logger.Info("Queued the workers' newest reports again for the GM that sent the snapshot", "kind", f.kind, "reports", queued)
	}
}

// forwardOptions says how a relayed report uses the outbox: a report of the worker's latest
// state (status running or none) is coalesced per owner, worker and phase; anything else is an
// event.
func forwardOptions(key channel.Key, msg WorkerMessage) store.EnqueueOptions {
	switch strings.ToLower(msg.Status) {
	case "", "running":
	default:
		return store.EnqueueOptions{Class: store.ClassWorkerEvent}
	}
	// Hashed so that any name fits the store's bound on streams; JSON keeps the parts apart.
	tuple, _ := json.Marshal([]string{key.Kind, key.Namespace, key.Name, msg.Name, strings.ToLower(msg.Kind)}) // strings always encode
	sum := sha256.Sum256(tuple)
	return store.EnqueueOptions{Class: store.ClassWorkerMetrics, Stream: hex.EncodeToString(sum[:])}
}

// forwardedReport is upstream's shape of a worker report relayed to GM: GM's feature controllers
// read the phase, the status and output.models/output.ownerInfo.
type forwardedReport struct {
	Phase  string          `json:"phase"`
	Status string          `json:"status"`
	Output forwardedOutput `json:"output"`
	// Worker is not upstream's: the reporting worker's name, so GM can keep each worker's
	// latest counters apart (several edge replicas report cumulative counters of their own).
	Worker string `json:"worker,omitempty"`
	// Dropped is not upstream's: see EncodeForwardedReport.
	Dropped uint64 `json:"dropped,omitempty"`
}

type forwardedOutput struct {
	// Models and OwnerInfo are null when the worker sent none, as upstream's LC sent them.
	Models    []map[string]any `json:"models"`
	OwnerInfo map[string]any   `json:"ownerInfo"`
}

// EncodeForwardedReport returns the content GM expects for a relayed worker report:
// {"phase":<kind>,"status":<status>,"output":{"models":<results or null>,"ownerInfo":<ownerInfo or null>}}.
// An error (a value JSON cannot encode, such as NaN) wraps ErrInvalidMessage.
//
// The Forwarder adds "dropped":N (N > 0) once reports about the owner have been refused because
// the LC's outbox was full: N is how many reports about the owner, from any of its workers on
// this node, the LC refused since it started. It only grows while the LC runs, so a coalesced
// report carries it as surely as the newest counters; GM sets the owner's ReportsDropped
// condition from it. Without drops the field is absent, as in upstream's reports.
func EncodeForwardedReport(msg WorkerMessage) ([]byte, error) {
	return encodeForwardedReport(msg, 0)
}

func encodeForwardedReport(msg WorkerMessage, dropped uint64) ([]byte, error) {
	content, err := json.Marshal(forwardedReport{
		Phase:   msg.Kind,
		Status:  msg.Status,
		Output:  forwardedOutput{Models: msg.Results, OwnerInfo: msg.OwnerInfo},
		Worker:  msg.Name,
		Dropped: dropped,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the report of worker %s for GM: %w", ErrInvalidMessage, msg.Name, err)
	}
	return content, nil
}
