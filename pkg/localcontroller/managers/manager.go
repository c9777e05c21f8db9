package managers

import (
	"context"
	"errors"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Reporter queues a report about a resource for GM durably; it returns only after the report is
// committed. content is the JSON document GM's upstream handler of key.Kind parses.
type Reporter interface {
	Report(ctx context.Context, key channel.Key, content []byte) error
}

// Manager keeps the LC's work for one channel kind.
//
// The GM client stores every resource before it calls the Dispatcher, so a manager may read the
// store and must tolerate being told about the same version again (after a reconnect snapshot or
// a restart of the LC, when Dispatcher.Replay hands it everything stored). Both methods are called
// for one kind from one goroutine at a time but must not block for long: they hold up the channel.
type Manager interface {
	// Kind is the lower-case channel kind, e.g. "dataset".
	Kind() string
	// ResourceChanged tells the manager that GM sent a new version: r.Object is the JSON of the
	// custom resource (for kind "secret", {"annotations":{...},"data":{"KEY":"base64"}}).
	ResourceChanged(ctx context.Context, r store.Resource)
	// ResourceDeleted tells the manager that GM no longer binds the resource to this node.
	ResourceDeleted(ctx context.Context, key store.ResourceKey)
}

// WorkerMessageHandler is implemented by managers that take worker reports (the message's
// ownerKind equals the manager's Kind). A nil return promises that whatever the message needs
// GM to learn is durably queued, so the HTTP API may answer 200 and the worker may forget it.
// An error wrapping ErrInvalidMessage means the message itself is wrong (HTTP 400); any other
// error is transient (HTTP 503, the worker library retries).
type WorkerMessageHandler interface {
	HandleWorkerMessage(ctx context.Context, msg WorkerMessage) error
}

// SnapshotObserver is implemented by managers that act when GM's snapshot of the node has been
// applied, at the start of every connection (see gmclient.SnapshotObserver). It is called like
// ResourceChanged: one call at a time, and it must not block for long.
type SnapshotObserver interface {
	SnapshotApplied(ctx context.Context)
}

// Runner is implemented by managers with background work (the dataset monitors). Dispatcher.Run
// runs it until ctx is done; Run returns only once that work has stopped.
type Runner interface {
	Run(ctx context.Context)
}

// WorkerMessage is the body a worker posts to POST /sedna/workers/{worker}/info, field for field
// as upstream's Python library (lib/sedna, JobBase.report_task_info) sends it.
type WorkerMessage struct {
	// Name is the worker's name; it must equal the {worker} of the path.
	Name string `json:"name"`
	// Namespace, OwnerName and OwnerKind name the custom resource the worker works for; OwnerKind
	// is its lower-case kind, e.g. "incrementallearningjob".
	Namespace string `json:"namespace"`
	OwnerName string `json:"ownerName"`
	OwnerKind string `json:"ownerKind"`
	// OwnerInfo is free-form progress of the owner (federated learning rounds, joint inference
	// counters).
	OwnerInfo map[string]any `json:"ownerInfo,omitempty"`
	// Kind is the stage the worker ran: train, eval, deploy or inference.
	Kind string `json:"kind"`
	// Status is the stage's outcome: completed, failed, running or ready.
	Status string `json:"status"`
	// Results are typically [{format, url, metrics}] of the models the stage produced or evaluated.
	Results []map[string]any `json:"results,omitempty"`

	// PublishedWorker is set by the LC, never read from the body: Name is one of the workers GM
	// published with the owner for this node (a report with the job's token may name any).
	PublishedWorker bool `json:"-"`
}

// OwnerKey is the channel key of the resource the message is about.
func (m WorkerMessage) OwnerKey() channel.Key {
	return channel.Key{Kind: m.OwnerKind, Namespace: m.Namespace, Name: m.OwnerName}
}

var (
	// ErrInvalidMessage is wrapped by HandleWorkerMessage errors that blame the message, not the
	// LC: retrying the same message cannot succeed.
	ErrInvalidMessage = errors.New("invalid worker message")
	// ErrNoManager is wrapped when no manager on this LC takes worker messages of a kind.
	ErrNoManager = errors.New("no manager for this kind")
)
