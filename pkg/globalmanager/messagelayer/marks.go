package messagelayer

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"
)

// Mark is the highest report sequence number GM has taken from a node's LC store.
type Mark struct {
	Store string `json:"store"`
	Seq   uint64 `json:"seq"`
}

// MarkStore keeps every node's Mark across GM restarts, so the next GM drops the reports the
// previous one took even when their acknowledgement never reached the LC.
type MarkStore interface {
	// Load returns the marks by node.
	Load(ctx context.Context) (map[string]Mark, error)
	// Save records the given nodes' marks; others keep theirs.
	Save(ctx context.Context, marks map[string]Mark) error
}

// ConfigMapMarks keeps the marks in one ConfigMap in GM's namespace: data key = node name,
// value = the JSON Mark. Only the leader writes it. A node costs its name plus about 80 bytes
// (the store identity is at most 64 characters), roughly 100 bytes for usual node names, so the
// ConfigMap's 1 MiB holds about 10,000 nodes. Beyond that the writes of new nodes' marks fail:
// those nodes' reports wait (and are retried every second) while nodes whose marks are already
// in the ConfigMap go on, since their writes are then made one by one. Load drops the marks of
// nodes that no longer exist from the ConfigMap, after it returned, when Nodes is set.
type ConfigMapMarks struct {
	Client corev1client.ConfigMapInterface
	Name   string
	// Nodes, when set, lists the cluster's nodes so Load can prune the marks of deleted ones
	// (in the background: WaitPruned waits for it).
	Nodes corev1client.NodeInterface

	pruning sync.WaitGroup
}

// WaitPruned waits until the pruning Load started is over.
func (m *ConfigMapMarks) WaitPruned() { m.pruning.Wait() }

// Load implements MarkStore. A missing ConfigMap is no marks yet.
func (m *ConfigMapMarks) Load(ctx context.Context) (map[string]Mark, error) {
	cm, err := m.Client.Get(ctx, m.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string]Mark{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the report marks ConfigMap %s: %w", m.Name, err)
	}
	marks := make(map[string]Mark, len(cm.Data))
	for node, value := range cm.Data {
		var mark Mark
		if err := json.Unmarshal([]byte(value), &mark); err != nil {
			// A damaged entry only costs that node's deduplication across this restart.
			klog.FromContext(ctx).Error(err, "Ignoring a damaged report mark", "configMap", m.Name, "node", node)
			continue
		}
		marks[node] = mark
	}
	if m.Nodes != nil && len(marks) > 0 {
		// Off the take-over path: listing every Node took seconds at thousands of nodes while
		// no LC was served (docs/performance.md). A deleted node's mark in memory costs nothing;
		// the ConfigMap loses it once the list is done.
		nodes := slices.Collect(maps.Keys(marks))
		m.pruning.Add(1)
		go func() {
			defer m.pruning.Done()
			m.prune(ctx, nodes)
		}()
	}
	return marks, nil
}

// prune removes from the ConfigMap the marks of nodes (of those given) that no longer exist. A
// failure only leaves the marks in place until the next Load.
func (m *ConfigMapMarks) prune(ctx context.Context, marked []string) {
	logger := klog.FromContext(ctx)
	live := map[string]bool{}
	// In pages: only the names are kept. A consistent list, never an older cache's: a node
	// created a moment ago must not lose its mark.
	opts := metav1.ListOptions{Limit: 500}
	for {
		nodes, err := m.Nodes.List(ctx, opts)
		if err != nil {
			logger.Error(err, "Cannot list the nodes; keeping the report marks of deleted nodes", "configMap", m.Name)
			return
		}
		for i := range nodes.Items {
			live[nodes.Items[i].Name] = true
		}
		if opts.Continue = nodes.Continue; opts.Continue == "" {
			break
		}
	}
	gone := map[string]any{}
	for _, node := range marked {
		if !live[node] {
			gone[node] = nil // a merge patch removes a key set to null
		}
	}
	if len(gone) == 0 {
		return
	}
	patch, err := json.Marshal(map[string]any{"data": gone})
	if err == nil {
		_, err = m.Client.Patch(ctx, m.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		logger.Error(err, "Cannot prune the report marks of deleted nodes", "configMap", m.Name, "nodes", len(gone))
		return
	}
	logger.Info("Pruned the report marks of deleted nodes", "configMap", m.Name, "nodes", len(gone))
}

// Save implements MarkStore with one merge patch of the changed keys, creating the ConfigMap
// the first time.
func (m *ConfigMapMarks) Save(ctx context.Context, marks map[string]Mark) error {
	data := make(map[string]string, len(marks))
	for node, mark := range marks {
		value, err := json.Marshal(mark)
		if err != nil {
			return fmt.Errorf("encoding the report mark of %s: %w", node, err)
		}
		data[node] = string(value)
	}
	patch, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		return fmt.Errorf("encoding the report marks patch: %w", err)
	}
	_, err = m.Client.Patch(ctx, m.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		_, err = m.Client.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: m.Name, Labels: map[string]string{"app.kubernetes.io/component": "sedna-gm"}},
			Data:       data,
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = m.Client.Patch(ctx, m.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("writing the report marks ConfigMap %s: %w", m.Name, err)
	}
	return nil
}

// markPersister batches the marks of every node into one write, and lets report handling wait
// until a report's mark is written before acting on it.
type markPersister struct {
	ctx   context.Context
	store MarkStore
	delay time.Duration
	wake  chan struct{}
}

// UseMarks loads the marks the previous GM persisted and persists this GM's from now on, in
// batches gathered for batchDelay. Call it before serving LCs. A mark covers the reports GM
// handled, and a report is acknowledged only once its mark is written: a GM that dies before
// the write leaves the report unacknowledged, and the next GM handles it again (at least once);
// after the write, no later GM does. Whatever the store said, a mark covers only reports already
// handled (a write the store made though it answered an error included).
func (h *Hub) UseMarks(ctx context.Context, store MarkStore, batchDelay time.Duration) error {
	marks, err := store.Load(ctx)
	if err != nil {
		return err
	}
	for node, mark := range marks {
		ns := h.node(node)
		ns.mu.Lock()
		ns.storeID, ns.lastReportSeq, ns.handledSeq = mark.Store, mark.Seq, mark.Seq
		ns.persisted = mark
		ns.mu.Unlock()
	}
	p := &markPersister{ctx: ctx, store: store, delay: batchDelay, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.marks = p
	h.mu.Unlock()
	klog.FromContext(ctx).Info("Loaded the LC report marks", "nodes", len(marks))
	go h.persistMarks(ctx, p)
	return nil
}

// persistMarks writes the marks of nodes whose reports wait, until ctx ends.
func (h *Hub) persistMarks(ctx context.Context, p *markPersister) {
	logger := klog.FromContext(ctx)
	const retry = time.Second
	// retryAt is when a write may be tried again after one failed: every handled report wakes
	// the persister, and an API server that is down must not get a write every batch delay.
	var retryAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		wait := p.delay // gather the reports arriving meanwhile into the same write
		if until := time.Until(retryAt); until > wait {
			wait = until
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		changed := map[string]Mark{}
		var states []*nodeState
		h.mu.Lock()
		for _, ns := range h.nodes {
			states = append(states, ns)
		}
		h.mu.Unlock()
		for _, ns := range states {
			ns.mu.Lock()
			if current := (Mark{Store: ns.storeID, Seq: ns.handledSeq}); current != ns.persisted {
				changed[ns.name] = current
			}
			ns.mu.Unlock()
		}
		if len(changed) == 0 {
			continue
		}
		if err := p.store.Save(ctx, changed); err != nil {
			if ctx.Err() != nil {
				return
			}
			h.metrics.MarkWrites.WithLabelValues("error").Inc()
			logger.Error(err, "Cannot persist the LC report marks; their reports wait", "nodes", len(changed), "retryIn", retry)
			time.AfterFunc(retry, p.signal)
			if len(changed) == 1 || !refusedForItsContent(err) {
				retryAt = time.Now().Add(retry)
				continue // the store is unavailable: one node alone would fail too
			}
			// The store refused the write itself (too large): write the marks one by one so
			// the nodes whose own write succeeds go on while the others wait.
			changed = h.saveEach(ctx, p.store, changed)
		} else {
			h.metrics.MarkWrites.WithLabelValues("ok").Inc()
		}
		logPersisted(logger, changed)
		for _, ns := range states {
			mark, ok := changed[ns.name]
			if !ok {
				continue
			}
			ns.mu.Lock()
			ns.persisted = mark
			close(ns.persistedCh)
			ns.persistedCh = make(chan struct{})
			ns.mu.Unlock()
		}
	}
}

// logPersisted logs, at V(4), each node's mark just written: the fault campaign (test/chaos)
// tells a report handled again by the next GM because its GM died before writing its mark
// from one handled twice.
func logPersisted(logger klog.Logger, written map[string]Mark) {
	if v := logger.V(4); v.Enabled() {
		for node, mark := range written {
			v.Info("Persisted a report mark", "node", node, "store", mark.Store, "seq", mark.Seq)
		}
	}
}

// refusedForItsContent says whether the store refused a write for what it held (a ConfigMap
// past its size limit is Invalid; a request past the API server's limit is too large) rather
// than because the API server is unavailable.
func refusedForItsContent(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err)
}

// saveEach writes each node's mark alone and returns the marks written.
func (h *Hub) saveEach(ctx context.Context, store MarkStore, changed map[string]Mark) map[string]Mark {
	logger := klog.FromContext(ctx)
	saved := make(map[string]Mark, len(changed))
	for node, mark := range changed {
		if err := store.Save(ctx, map[string]Mark{node: mark}); err != nil {
			if ctx.Err() != nil {
				return saved
			}
			h.metrics.MarkWrites.WithLabelValues("error").Inc()
			logger.Error(err, "Cannot persist the LC report mark of a node; its reports wait", "node", node)
			continue
		}
		h.metrics.MarkWrites.WithLabelValues("ok").Inc()
		saved[node] = mark
	}
	return saved
}

func (p *markPersister) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// waitPersisted returns true once the node's persisted mark covers seq of store, or false when
// the persister stops first (GM is stopping) or another LC store replaced store (its reports
// can no longer be acknowledged). It does not give up when the connection closes. Without a
// MarkStore it returns true at once.
func (h *Hub) waitPersisted(ns *nodeState, store string, seq uint64) bool {
	h.mu.Lock()
	p := h.marks
	h.mu.Unlock()
	if p == nil {
		return true
	}
	for {
		ns.mu.Lock()
		if ns.storeID != store {
			ns.mu.Unlock()
			return false
		}
		if ns.persisted.Store == store && ns.persisted.Seq >= seq {
			ns.mu.Unlock()
			return true
		}
		ch := ns.persistedCh
		ns.mu.Unlock()
		p.signal()
		select {
		case <-ch:
		case <-p.ctx.Done():
			return false
		}
	}
}
