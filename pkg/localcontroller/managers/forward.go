package managers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Kinds whose LC side only relays worker reports.
const (
	KindJointInferenceService = "jointinferenceservice"
	KindFederatedLearningJob  = "federatedlearningjob"
)

// Forwarder is the manager of a feature whose LC side only relays worker reports to GM: joint
// inference (edge inference counters) and federated learning (training rounds). The resources of
// its kind need no local work; the store keeps them so the HTTP API can tell a job this node runs
// from a report about something else.
type Forwarder struct {
	kind     string
	reporter Reporter
}

var (
	_ Manager              = (*Forwarder)(nil)
	_ WorkerMessageHandler = (*Forwarder)(nil)
)

// NewForwarder returns a Forwarder for the lower-case kind.
func NewForwarder(kind string, reporter Reporter) (*Forwarder, error) {
	if kind == "" || kind != strings.ToLower(kind) {
		return nil, fmt.Errorf("creating a forwarding manager: kind %q must be non-empty and lower case", kind)
	}
	if reporter == nil {
		return nil, fmt.Errorf("creating a forwarding manager for %s: reporter is nil", kind)
	}
	return &Forwarder{kind: kind, reporter: reporter}, nil
}

// Kind returns the kind the Forwarder was made for.
func (f *Forwarder) Kind() string { return f.kind }

// ResourceChanged does nothing beyond logging: the GM client has already stored the resource.
func (f *Forwarder) ResourceChanged(ctx context.Context, r store.Resource) {
	klog.FromContext(ctx).V(4).Info("Resource stored; worker reports about it will be forwarded", "resource", r.Key.String(), "version", r.Version)
}

// ResourceDeleted does nothing beyond logging: there is no local work to stop.
func (f *Forwarder) ResourceDeleted(ctx context.Context, key store.ResourceKey) {
	klog.FromContext(ctx).V(4).Info("Resource deleted; its worker reports are no longer accepted", "resource", key.String())
}

// HandleWorkerMessage queues msg for GM as a report about its owner, in upstream's forwarded
// shape, and returns once the report is durably queued.
func (f *Forwarder) HandleWorkerMessage(ctx context.Context, msg WorkerMessage) error {
	if !strings.EqualFold(msg.OwnerKind, f.kind) {
		return fmt.Errorf("%w: ownerKind %q sent to the %s manager", ErrInvalidMessage, msg.OwnerKind, f.kind)
	}
	content, err := EncodeForwardedReport(msg)
	if err != nil {
		return err
	}
	key := channel.Key{Kind: f.kind, Namespace: msg.Namespace, Name: msg.OwnerName}
	if err := f.reporter.Report(ctx, key, content); err != nil {
		return fmt.Errorf("queueing the report of worker %s about %s for GM: %w", msg.Name, key, err)
	}
	klog.FromContext(ctx).V(4).Info("Forwarded worker report", "owner", key.String(), "worker", msg.Name, "phase", msg.Kind, "status", msg.Status)
	return nil
}

// forwardedReport is upstream's shape of a worker report relayed to GM: GM's feature controllers
// read the phase, the status and output.models/output.ownerInfo.
type forwardedReport struct {
	Phase  string          `json:"phase"`
	Status string          `json:"status"`
	Output forwardedOutput `json:"output"`
}

type forwardedOutput struct {
	// Models and OwnerInfo are null when the worker sent none, as upstream's LC sent them.
	Models    []map[string]any `json:"models"`
	OwnerInfo map[string]any   `json:"ownerInfo"`
}

// EncodeForwardedReport returns the content GM expects for a relayed worker report:
// {"phase":<kind>,"status":<status>,"output":{"models":<results or null>,"ownerInfo":<ownerInfo or null>}}.
// An error (a value JSON cannot encode, such as NaN) wraps ErrInvalidMessage.
func EncodeForwardedReport(msg WorkerMessage) ([]byte, error) {
	content, err := json.Marshal(forwardedReport{
		Phase:  msg.Kind,
		Status: msg.Status,
		Output: forwardedOutput{Models: msg.Results, OwnerInfo: msg.OwnerInfo},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the report of worker %s for GM: %w", ErrInvalidMessage, msg.Name, err)
	}
	return content, nil
}
