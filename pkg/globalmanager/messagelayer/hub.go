package messagelayer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
)

// ReportHandler receives the reports of one resource kind. It must not block: it records the
// report and enqueues the resource's key. An error rejects the report (the LC is told why).
type ReportHandler interface {
	HandleReport(ctx context.Context, node string, key channel.Key, content []byte) error
}

// ReportHandlerFunc adapts a function to ReportHandler.
type ReportHandlerFunc func(ctx context.Context, node string, key channel.Key, content []byte) error

// HandleReport calls f.
func (f ReportHandlerFunc) HandleReport(ctx context.Context, node string, key channel.Key, content []byte) error {
	return f(ctx, node, key, content)
}

// Options tune delivery.
type Options struct {
	// ResendAfter is how long a frame may stay unacknowledged before it is sent again.
	ResendAfter time.Duration
	// WriteTimeout bounds one write; a node that does not read is disconnected.
	WriteTimeout time.Duration
	// PingInterval is how often GM pings; a connection silent for 3 intervals is closed.
	PingInterval time.Duration
	// MaxFrameBytes bounds frames in both directions.
	MaxFrameBytes int
	// MaxFramesPerWrite bounds how many frames one writer pass sends before looking at acks.
	MaxFramesPerWrite int
	// MaxQueuedAcks bounds the acknowledgements waiting to be written to one LC; an LC that sends
	// reports without reading is disconnected.
	MaxQueuedAcks int
	// CredentialRecheck is how often a connection's token is reviewed again, so a connection
	// does not outlive the LC pod its token is bound to.
	CredentialRecheck time.Duration
}

func (o *Options) setDefaults() {
	if o.ResendAfter <= 0 {
		o.ResendAfter = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 20 * time.Second
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = channel.DefaultMaxFrameBytes
	}
	if o.MaxFramesPerWrite <= 0 {
		o.MaxFramesPerWrite = 256
	}
	if o.MaxQueuedAcks <= 0 {
		o.MaxQueuedAcks = 4096
	}
	if o.CredentialRecheck <= 0 {
		o.CredentialRecheck = 2 * time.Minute
	}
}

// Hub holds every node's desired state and its current connection.
type Hub struct {
	opts    Options
	metrics *Metrics
	now     func() time.Time
	// onAck, when set, observes every acknowledged resource frame (a benchmark seam).
	onAck func(node string, key channel.Key, version uint64)

	mu       sync.Mutex
	nodes    map[string]*nodeState
	bindings map[channel.Key]map[string]struct{}
	handlers map[string]ReportHandler
	// marks persists report marks; nil keeps them in memory only.
	marks *markPersister
	// states tells controllers which nodes' LCs are connected, and since when.
	states *NodeStates
}

// entry is the desired state of one resource on one node. A deleted entry is a tombstone kept
// until the node acknowledges the delete or reconnects (the snapshot then implies it).
type entry struct {
	version uint64
	object  []byte
	deleted bool
}

type nodeState struct {
	name string

	mu        sync.Mutex
	resources map[channel.Key]*entry
	conn      *connection
	// lastReportSeq is the newest report taken (read, in order) of the node's current store;
	// a report at or below it is a duplicate.
	lastReportSeq uint64
	// handledSeq is the newest report of the current store handled, every one before it
	// handled too: the mark persisted. It trails lastReportSeq while taken reports wait.
	handledSeq uint64
	// storeID identifies the LC store lastReportSeq and handledSeq belong to.
	storeID string
	// persisted is the mark last written to the MarkStore; persistedCh is closed when it
	// changes.
	persisted   Mark
	persistedCh chan struct{}
}

// NewHub returns a hub without nodes. metrics may be nil.
func NewHub(opts Options, metrics *Metrics) *Hub {
	opts.setDefaults()
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Hub{
		opts:     opts,
		metrics:  metrics,
		now:      time.Now,
		nodes:    map[string]*nodeState{},
		bindings: map[channel.Key]map[string]struct{}{},
		handlers: map[string]ReportHandler{},
		states:   NewNodeStates(nil),
	}
}

// NodeStates returns the channel state per node (runtime.NodeChannel).
func (h *Hub) NodeStates() *NodeStates { return h.states }

// RegisterHandler routes reports about kind (lower case) to h. Call before serving.
func (h *Hub) RegisterHandler(kind string, handler ReportHandler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handlers[strings.ToLower(kind)] = handler
}

func (h *Hub) node(name string) *nodeState {
	h.mu.Lock()
	defer h.mu.Unlock()
	ns, ok := h.nodes[name]
	if !ok {
		ns = &nodeState{name: name, resources: map[channel.Key]*entry{}, persistedCh: make(chan struct{})}
		h.nodes[name] = ns
	}
	return ns
}

// Publish makes object (at version) the desired state of key on exactly the given nodes: nodes
// that had it and are not listed get a delete. A version older than what a node has is ignored.
func (h *Hub) Publish(key channel.Key, version uint64, object []byte, nodes ...string) {
	objects := make(map[string][]byte, len(nodes))
	for _, n := range nodes {
		objects[n] = object
	}
	h.PublishEach(key, version, objects)
}

// PublishEach makes objects[node] (at version) the desired state of key on each node of objects,
// so that each node gets its own copy (a job's workers on that node): nodes that had key and are
// not in objects get a delete. Node "" is ignored. A version older than what a node has is
// ignored.
func (h *Hub) PublishEach(key channel.Key, version uint64, objects map[string][]byte) {
	want := make(map[string]struct{}, len(objects))
	for n := range objects {
		if n != "" {
			want[n] = struct{}{}
		}
	}
	h.mu.Lock()
	previous := h.bindings[key]
	if len(want) == 0 {
		delete(h.bindings, key)
	} else {
		h.bindings[key] = want
	}
	h.mu.Unlock()

	for n := range want {
		h.node(n).set(key, &entry{version: version, object: objects[n]})
	}
	for n := range previous {
		if _, still := want[n]; !still {
			h.node(n).set(key, &entry{version: version, deleted: true})
		}
	}
}

// Unpublish removes key from every node it was published to. The delete carries a version just
// above the last one published: the deletion's own resourceVersion is at least that, and a
// re-created object's is higher still, so neither is mistaken for stale.
func (h *Hub) Unpublish(key channel.Key) {
	var version uint64
	for _, n := range h.NodesOf(key) {
		ns := h.node(n)
		ns.mu.Lock()
		if e, ok := ns.resources[key]; ok && e.version >= version {
			version = e.version + 1
		}
		ns.mu.Unlock()
	}
	h.Publish(key, version, nil)
}

// IsBound reports whether key is currently published to node.
func (h *Hub) IsBound(node string, key channel.Key) bool {
	h.mu.Lock()
	_, ok := h.bindings[key][node]
	h.mu.Unlock()
	return ok
}

// NodesOf returns the nodes key is published to, sorted.
func (h *Hub) NodesOf(key channel.Key) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	nodes := make([]string, 0, len(h.bindings[key]))
	for n := range h.bindings[key] {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	return nodes
}

// ConnectedNodes returns the nodes with a live connection, sorted.
func (h *Hub) ConnectedNodes() []string {
	h.mu.Lock()
	states := make([]*nodeState, 0, len(h.nodes))
	for _, ns := range h.nodes {
		states = append(states, ns)
	}
	h.mu.Unlock()
	var nodes []string
	for _, ns := range states {
		ns.mu.Lock()
		if ns.conn != nil {
			nodes = append(nodes, ns.name)
		}
		ns.mu.Unlock()
	}
	slices.Sort(nodes)
	return nodes
}

func (ns *nodeState) set(key channel.Key, e *entry) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if old, ok := ns.resources[key]; ok && old.version > e.version {
		return // stale: a newer state was already published
	}
	if e.deleted {
		if _, ok := ns.resources[key]; !ok {
			return // the node never had it
		}
		if ns.conn == nil {
			// The next snapshot's sync frame implies the delete.
			delete(ns.resources, key)
			return
		}
	}
	ns.resources[key] = e
	if ns.conn != nil {
		ns.conn.markDirty(key)
	}
}

// serve runs the protocol on an authenticated connection until it breaks or ctx ends.
func (h *Hub) serve(ctx context.Context, node, storeID string, ws wsConn) {
	logger := klog.FromContext(ctx).WithValues("node", node)
	ctx = klog.NewContext(ctx, logger)
	ns := h.node(node)
	c := newConnection(h, ns, ws)

	ns.mu.Lock()
	if storeID != ns.storeID {
		// A new or wiped LC store numbers its reports from 1 again.
		ns.storeID = storeID
		ns.lastReportSeq, ns.handledSeq = 0, 0
	}
	c.store = storeID
	previous := ns.conn
	if previous != nil {
		// The reports the previous connection took are handled before this one's, so the
		// handled reports stay a prefix of the store's.
		c.after = previous.handledAll
	}
	ns.conn = c
	// Snapshot: tombstones are implied by the sync frame; everything present is sent again.
	keys := make([]channel.Key, 0, len(ns.resources))
	for key, e := range ns.resources {
		if e.deleted {
			delete(ns.resources, key)
			continue
		}
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b channel.Key) int { return strings.Compare(a.String(), b.String()) })
	for _, key := range keys {
		c.markDirty(key)
	}
	c.syncPending = true
	c.signal()
	ns.mu.Unlock()
	if previous != nil {
		logger.V(2).Info("Replacing the node's previous connection")
		previous.close()
	}
	h.states.Connected(node, c)
	h.metrics.ConnectedNodes.Inc()
	logger.V(2).Info("LC connected", "resources", len(keys))

	c.run(ctx)

	ns.mu.Lock()
	if ns.conn == c {
		ns.conn = nil
	}
	ns.mu.Unlock()
	h.states.Disconnected(node, c)
	h.metrics.ConnectedNodes.Dec()
	logger.V(2).Info("LC disconnected")
}

// takeReport advances the node's taken reports to the report unless they already cover it, and
// says whether it did (false: a duplicate). A connection that another replaced takes nothing
// (taken false): its LC store may be gone, and the node's numbering now is the new store's;
// the LC sends what it was not acknowledged again on its new connection.
func (h *Hub) takeReport(ns *nodeState, c *connection, f *channel.Frame) (duplicate, taken bool) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.conn != c || ns.storeID != c.store {
		return false, false
	}
	duplicate = f.Seq <= ns.lastReportSeq
	if !duplicate {
		ns.lastReportSeq = f.Seq
	}
	return duplicate, true
}

// reportHandled advances the node's handled reports (the mark to persist) to seq of store.
func (h *Hub) reportHandled(ns *nodeState, store string, seq uint64) {
	ns.mu.Lock()
	if ns.storeID == store && seq > ns.handledSeq {
		ns.handledSeq = seq
	}
	ns.mu.Unlock()
	h.mu.Lock()
	p := h.marks
	h.mu.Unlock()
	if p != nil {
		p.signal()
	}
}

// handleReport authorizes and dispatches one taken report and returns the error to send back in
// its ack ("" when accepted). The ack waits until the report's mark is persisted (ackLoop): a GM
// dying before that leaves the report unacknowledged, and the LC sends it to the next GM, which
// handles it again. Handlers are idempotent (they keep a worker's latest report, or reconcile a
// job to it), so a report reaches the controllers at least once; once its mark is persisted,
// no later GM handles it again.
func (h *Hub) handleReport(ctx context.Context, ns *nodeState, f *channel.Frame) (ackError string) {
	logger := klog.FromContext(ctx)
	key := f.Header.Key()
	reject := func(reason, msg string) string {
		h.metrics.Reports.WithLabelValues("rejected").Inc()
		h.metrics.ReportsRejected.WithLabelValues(reason).Inc()
		logger.Info("Rejected a report", "resource", key.String(), "seq", f.Seq, "reason", msg)
		return msg
	}
	if !h.IsBound(ns.name, key) {
		return reject(reasonNotBound, fmt.Sprintf("%s is not bound to node %s", key, ns.name))
	}
	h.mu.Lock()
	handler := h.handlers[key.Kind]
	h.mu.Unlock()
	if handler == nil {
		return reject(reasonUnknownKind, fmt.Sprintf("no controller takes reports about kind %q", key.Kind))
	}
	// The report's sequence number goes with every line its handler logs.
	ctx = klog.NewContext(ctx, logger.WithValues("reportSeq", f.Seq))
	if err := handler.HandleReport(ctx, ns.name, key, f.Content); err != nil {
		return reject(reasonInvalid, fmt.Sprintf("report about %s: %v", key, err))
	}
	h.metrics.Reports.WithLabelValues("accepted").Inc()
	return ""
}

// snapshotEntries lists what the node has now, for the sync frame.
func (ns *nodeState) snapshotEntries() []channel.SyncEntry {
	entries := make([]channel.SyncEntry, 0, len(ns.resources))
	for key, e := range ns.resources {
		if !e.deleted {
			entries = append(entries, channel.SyncEntry{Key: key, Version: e.version})
		}
	}
	slices.SortFunc(entries, func(a, b channel.SyncEntry) int { return strings.Compare(a.String(), b.String()) })
	return entries
}

func marshalSync(entries []channel.SyncEntry) []byte {
	data, err := json.Marshal(entries)
	if err != nil {
		// A slice of plain structs always marshals; reaching here is a programming error.
		panic(fmt.Sprintf("marshalling sync entries: %v", err))
	}
	return data
}
