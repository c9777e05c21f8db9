// Package workerreports keeps the workers' latest reports of the objects of one controller, the
// one mechanism behind the status metrics of joint inference and the multi-edge kinds.
//
// Who may report: a report reaches GM from the LC of node (authenticated on the channel) and
// names its worker. It is kept only when that worker is a pod of the object (its owner labels)
// and runs on that node, so an LC speaks for its own node's workers only; a report without a
// worker is ignored. What is kept is bounded: at most MaxKeys keys per worker and per object,
// each key at most MaxKeyBytes and each value at most MaxValueBytes; what a report had beyond
// that is dropped, and an Event on the object names it. Entries of workers whose pods are gone
// are pruned at the next sync, so an object's entries are bounded by its pods.
package workerreports

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// The bounds of what is kept of the reports (see the package comment).
const (
	MaxKeys       = 64
	MaxKeyBytes   = 253
	MaxValueBytes = 1024
)

// ReasonReportTruncated is the reason of the Warning Event naming what a report lost to the bounds.
const ReasonReportTruncated = "ReportTruncated"

// Report is a worker report as the LC forwards it (managers.EncodeForwardedReport):
// upstream's {"phase","status","output":{"models","ownerInfo"}} with the reporting worker's
// name and, when the LC refused some for a full outbox, how many since it started.
type Report struct {
	Phase  string `json:"phase"`
	Status string `json:"status"`
	Output *struct {
		Models    json.RawMessage            `json:"models"`
		OwnerInfo map[string]json.RawMessage `json:"ownerInfo"`
	} `json:"output"`
	Worker  string `json:"worker,omitempty"`
	Dropped uint64 `json:"dropped,omitempty"`
}

// Decode decodes a forwarded report strictly; what names the kind in the error.
func Decode(content []byte, what string) (Report, error) {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.DisallowUnknownFields()
	var r Report
	if err := dec.Decode(&r); err != nil {
		return Report{}, fmt.Errorf("decoding the %s report: %w", what, err)
	}
	return r, nil
}

// Worker is one worker's latest values; Seq orders the reports of one object.
type Worker struct {
	Seq    uint64
	Values map[string]string
}

type objectReports struct {
	// uid is the object the reports are about: one created again under the same name starts
	// without them.
	uid     types.UID
	seq     uint64
	workers map[string]Worker
	// dropped is, per node, the newest count of reports its LC refused for a full outbox.
	dropped map[string]uint64
}

// Store holds the reports of a controller's objects by "namespace/name". Safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	objects map[string]*objectReports
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{objects: map[string]*objectReports{}}
}

// of returns key's reports, starting over for another uid. The caller holds mu.
func (s *Store) of(key string, uid types.UID) *objectReports {
	o := s.objects[key]
	if o == nil || o.uid != uid {
		o = &objectReports{uid: uid, workers: map[string]Worker{}, dropped: map[string]uint64{}}
		s.objects[key] = o
	}
	return o
}

// Object is the object a report is about, as Record needs it.
type Object struct {
	// Key is "namespace/name".
	Key string
	UID types.UID
	// Event is what Events are recorded on.
	Event k8sruntime.Object
	// Selector are the labels of the object's pods (workers.OwnerSelector).
	Selector map[string]string
}

// Record keeps the ownerInfo of r, a report from node's LC about obj (times dropped, strings
// kept, other values as JSON), within the bounds; true when it changed what is kept. A report
// whose worker is not a pod of obj on node is ignored (logged). pods lists obj's namespace.
func (s *Store) Record(ctx context.Context, pods corelisters.PodLister, recorder record.EventRecorder,
	obj Object, node string, r Report) bool {
	if r.Output == nil || len(r.Output.OwnerInfo) == 0 {
		return false
	}
	logger := klog.FromContext(ctx)
	if r.Worker == "" {
		logger.V(2).Info("Ignoring a report that names no worker", "object", obj.Key, "node", node)
		return false
	}
	namespace, _, _ := strings.Cut(obj.Key, "/")
	pod, err := pods.Pods(namespace).Get(r.Worker)
	if err != nil || !labels.SelectorFromSet(obj.Selector).Matches(labels.Set(pod.Labels)) {
		logger.V(2).Info("Ignoring the report of a worker that is not a pod of the object",
			"object", obj.Key, "node", node, "worker", r.Worker)
		return false
	}
	if pod.Spec.NodeName != node {
		logger.V(2).Info("Ignoring the report of a worker that does not run on the reporting node",
			"object", obj.Key, "node", node, "worker", r.Worker, "podNode", pod.Spec.NodeName)
		return false
	}
	values, dropped := bounded(r.Output.OwnerInfo)
	if len(dropped) > 0 {
		recorder.Eventf(obj.Event, corev1.EventTypeWarning, ReasonReportTruncated,
			"the report of worker %s dropped %s (at most %d keys of %d bytes, values of %d bytes)",
			r.Worker, describe(dropped), MaxKeys, MaxKeyBytes, MaxValueBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.of(obj.Key, obj.UID)
	o.seq++
	o.workers[r.Worker] = Worker{Seq: o.seq, Values: values}
	// One line per report taken, with what was kept: the fault campaign (test/chaos) runs GM
	// with --vmodule=workerreports=4 and counts the reports that reached GM by the IDs its
	// test workers put in ownerInfo.
	logger.V(4).Info("Recorded a worker report", "object", obj.Key, "node", node, "worker", r.Worker,
		"phase", clip(r.Phase), "status", clip(r.Status), "values", values)
	return true
}

// clip bounds a worker-supplied string GM only logs (values are bounded by bounded).
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

// bounded converts ownerInfo to the values kept, in key order, and names the keys dropped.
func bounded(info map[string]json.RawMessage) (map[string]string, []string) {
	names := make([]string, 0, len(info))
	for name := range info {
		if name != "startTime" && name != "updateTime" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	values := make(map[string]string, min(len(names), MaxKeys))
	var dropped []string
	for _, name := range names {
		raw := info[name]
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			s = string(raw)
		}
		switch {
		case len(name) > MaxKeyBytes:
			dropped = append(dropped, "a key of "+fmt.Sprint(len(name))+" bytes")
		case len(s) > MaxValueBytes:
			dropped = append(dropped, fmt.Sprintf("%q (a value of %d bytes)", name, len(s)))
		case len(values) >= MaxKeys:
			dropped = append(dropped, fmt.Sprintf("%q (over %d keys)", name, MaxKeys))
		default:
			values[name] = s
		}
	}
	return values, dropped
}

// describe lists the first few dropped keys and counts the rest: the Event stays short.
func describe(dropped []string) string {
	const shown = 5
	if len(dropped) <= shown {
		return strings.Join(dropped, ", ")
	}
	return fmt.Sprintf("%s and %d more keys", strings.Join(dropped[:shown], ", "), len(dropped)-shown)
}

// RecordDropped keeps node's newest count of reports about the object that its LC refused;
// true when it changed.
func (s *Store) RecordDropped(key string, uid types.UID, node string, dropped uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.of(key, uid)
	if o.dropped[node] == dropped {
		return false
	}
	if dropped == 0 {
		delete(o.dropped, node)
	} else {
		o.dropped[node] = dropped
	}
	return true
}

// Dropped returns the nodes whose LC refused reports about the object, with their counts.
func (s *Store) Dropped(key string, uid types.UID) map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[key]
	if o == nil || o.uid != uid || len(o.dropped) == 0 {
		return nil
	}
	return maps.Clone(o.dropped)
}

// Workers returns a copy of the latest values of the object's workers whose pods are among
// pods, after forgetting the others; nil when none reported.
func (s *Store) Workers(key string, uid types.UID, pods []*corev1.Pod) map[string]Worker {
	existing := make(map[string]bool, len(pods))
	for _, pod := range pods {
		existing[pod.Name] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[key]
	if o == nil {
		return nil
	}
	if o.uid != uid {
		delete(s.objects, key)
		return nil
	}
	for name := range o.workers {
		if !existing[name] {
			delete(o.workers, name)
		}
	}
	if len(o.workers) == 0 {
		return nil
	}
	return maps.Clone(o.workers)
}

// Forget drops everything kept about key.
func (s *Store) Forget(key string) {
	s.mu.Lock()
	delete(s.objects, key)
	s.mu.Unlock()
}

// Latest is, per key not skipped, the value of the latest report that has it.
func Latest(workers map[string]Worker, skip func(key string) bool) map[string]string {
	latest, latestSeq := map[string]string{}, map[string]uint64{}
	for _, w := range workers {
		for k, v := range w.Values {
			if skip != nil && skip(k) {
				continue
			}
			if w.Seq >= latestSeq[k] {
				latest[k], latestSeq[k] = v, w.Seq
			}
		}
	}
	return latest
}

// Metrics returns values as status metrics sorted by key, at most MaxKeys of them (the first in
// key order): the workers' keys together stay within the bound; nil when values is empty.
func Metrics(values map[string]string) []sednav1.Metric {
	if len(values) == 0 {
		return nil
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > MaxKeys {
		names = names[:MaxKeys]
	}
	metrics := make([]sednav1.Metric, 0, len(names))
	for _, k := range names {
		metrics = append(metrics, sednav1.Metric{Key: k, Value: values[k]})
	}
	return metrics
}

// Reported returns the names of the workers whose reports about key are kept, sorted.
func (s *Store) Reported(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[key]
	if o == nil {
		return nil
	}
	names := make([]string, 0, len(o.workers))
	for name := range o.workers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
