package messagelayer

import (
	"context"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
)

type wsConn = *websocket.Conn

// pending is a frame sent and not yet acknowledged.
type pending struct {
	seq     uint64
	version uint64
	sentAt  time.Time
}

// connection is one live websocket of a node. Its queues are guarded by the node's mutex, so the
// hub can mark resources dirty while the writer drains them.
type connection struct {
	hub *Hub
	ns  *nodeState
	ws  wsConn
	// batch gathers the frames of one writer pass into as few writes as possible; nil when the
	// websocket is not over a channel.BatchConn.
	batch *channel.BatchConn
	// encoded is the writer's buffer for encoding frames.
	encoded []byte

	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	// reports carries the reports the reader took, in order, to the report goroutine, which
	// handles each and passes it to the ack goroutine, which queues its ack once its mark is
	// persisted.
	reports chan takenReport
	// store is the LC store the connection was opened with (Sedna-Store-Id); set before it runs.
	store string
	// after, when set, is the previous connection's handledAll: this connection handles no
	// report before the previous one handled all it took. handledAll is closed when this
	// connection's report goroutine has handled every report it will.
	after, handledAll chan struct{}
	// slots holds one token per report the reader took and the report goroutine has not yet
	// received: the reader gets a slot before taking a report, so it can give up waiting when
	// the connection closes without having taken a report it cannot hand over.
	slots chan struct{}
	// readerDone is closed when the reader goroutine has returned.
	readerDone chan struct{}

	// Guarded by ns.mu.
	dirty        []channel.Key
	dirtySet     map[channel.Key]struct{}
	pendingByKey map[channel.Key]pending
	pendingBySeq map[uint64]channel.Key
	syncPending  bool
	syncSeq      uint64
	syncSentAt   time.Time
	acks         []channel.Frame
	nextSeq      uint64
}

func newConnection(h *Hub, ns *nodeState, ws wsConn) *connection {
	batch, _ := ws.NetConn().(*channel.BatchConn)
	return &connection{
		hub: h, ns: ns, ws: ws, batch: batch,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		reports:      make(chan takenReport, reportQueue),
		slots:        make(chan struct{}, reportQueue),
		readerDone:   make(chan struct{}),
		handledAll:   make(chan struct{}),
		dirtySet:     map[channel.Key]struct{}{},
		pendingByKey: map[channel.Key]pending{},
		pendingBySeq: map[uint64]channel.Key{},
		nextSeq:      1,
	}
}

// markDirty queues key for sending. Called with ns.mu held.
func (c *connection) markDirty(key channel.Key) {
	if _, ok := c.dirtySet[key]; !ok {
		c.dirtySet[key] = struct{}{}
		c.dirty = append(c.dirty, key)
	}
	c.signal()
}

func (c *connection) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *connection) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.ws.Close() // the connection is being abandoned; a close error changes nothing
	})
}

// reportQueue bounds the reports read and not yet handled on one connection (each up to
// MaxFrameBytes): the LC's window of unacknowledged reports (64) fits, and a reader that is
// further ahead waits.
const reportQueue = 64

// takenReport is a report the reader took (advanced the node's taken reports for, unless a
// duplicate) for an LC store.
type takenReport struct {
	frame     *channel.Frame
	duplicate bool
	store     string
}

// handledReport is a report handled (or a duplicate), waiting for its mark before its ack.
type handledReport struct {
	seq      uint64
	store    string
	ackError string
}

// run writes in this goroutine, reads in another, handles reports in a third and acknowledges
// them in a fourth, until the connection fails. Reports already taken are handled even then.
func (c *connection) run(ctx context.Context) {
	reportsDone := make(chan struct{})
	go func() {
		defer close(c.readerDone)
		defer c.close()
		defer close(c.reports)
		c.readLoop(ctx)
	}()
	go func() {
		defer close(reportsDone)
		c.reportLoop(ctx)
	}()
	c.writeLoop(ctx)
	c.close()
	<-c.readerDone
	<-reportsDone
}

// reportLoop handles the taken reports in order, after the previous connection's, and hands
// them to the ack goroutine.
func (c *connection) reportLoop(ctx context.Context) {
	handled := make(chan handledReport, reportQueue)
	acksDone := make(chan struct{})
	go func() {
		defer close(acksDone)
		c.ackLoop(ctx, handled)
	}()
	defer func() {
		close(handled)
		<-acksDone
	}()
	defer close(c.handledAll)
	if c.after != nil {
		<-c.after
	}
	for r := range c.reports {
		<-c.slots
		h := handledReport{seq: r.frame.Seq, store: r.store}
		if r.duplicate {
			c.hub.metrics.Reports.WithLabelValues("duplicate").Inc()
		} else {
			h.ackError = c.hub.handleReport(ctx, c.ns, r.frame)
			c.hub.reportHandled(c.ns, r.store, r.frame.Seq)
		}
		handled <- h
	}
}

// ackLoop queues the ack of each handled report once its mark is persisted. A duplicate waits
// too: its first copy may be handled and not yet persisted.
func (c *connection) ackLoop(ctx context.Context, handled <-chan handledReport) {
	logger := klog.FromContext(ctx)
	for h := range handled {
		if !c.hub.waitPersisted(c.ns, h.store, h.seq) {
			continue // GM is stopping before the mark was written, or the store was replaced: no ack
		}
		if !c.queueAck(h.seq, h.ackError) {
			logger.Info("The LC does not read its acknowledgements; closing the connection")
			c.close()
		}
	}
}

func (c *connection) writeLoop(ctx context.Context) {
	logger := klog.FromContext(ctx)
	opts := c.hub.opts
	tick := min(opts.ResendAfter/2, opts.PingInterval)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	lastPing := c.hub.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			return
		case <-c.wake:
		case <-ticker.C:
			c.checkResends()
			if now := c.hub.now(); now.Sub(lastPing) >= opts.PingInterval {
				lastPing = now
				if err := c.ws.WriteControl(websocket.PingMessage, nil, now.Add(opts.WriteTimeout)); err != nil {
					logger.V(2).Info("Ping failed; closing the connection", "err", err)
					return
				}
			}
		}
		if !c.writeQueued(ctx) {
			return
		}
	}
}

// writeQueued writes everything queued — acks, dirty resources, the sync frame — gathering the
// frames into as few writes as the batch limit allows, and writes the last of them once the queue
// is empty. False when the connection failed.
func (c *connection) writeQueued(ctx context.Context) bool {
	logger := klog.FromContext(ctx)
	opts := c.hub.opts
	wrote := false
	for {
		frames := c.nextBatch()
		if len(frames) == 0 {
			break
		}
		// The deadline bounds one batch, not the whole drain: a large snapshot over a slow edge
		// link, or a queue refilled while it drains, may take longer than WriteTimeout in all,
		// and closing the connection then would only send the same snapshot again.
		if err := c.ws.SetWriteDeadline(c.hub.now().Add(opts.WriteTimeout)); err != nil {
			logger.V(2).Info("Setting the write deadline failed; closing the connection", "err", err)
			return false
		}
		if !wrote {
			wrote = true
			if c.batch != nil {
				c.batch.Hold()
			}
		}
		for i := range frames {
			var err error
			c.encoded, err = channel.AppendEncode(c.encoded[:0], &frames[i])
			if err != nil {
				logger.Error(err, "Dropping a frame that cannot be encoded")
				continue
			}
			if err := c.ws.WriteMessage(websocket.TextMessage, c.encoded); err != nil {
				logger.V(2).Info("Write failed; closing the connection", "err", err)
				return false
			}
			if frames[i].Header.Operation != channel.OpAck {
				c.hub.metrics.FramesSent.Inc()
			}
		}
	}
	if cap(c.encoded) > 64<<10 {
		c.encoded = nil // let a large object's buffer go
	}
	if wrote && c.batch != nil {
		if err := c.batch.Flush(); err != nil {
			logger.V(2).Info("Write failed; closing the connection", "err", err)
			return false
		}
	}
	return true
}

// nextBatch takes the queued acks, then up to MaxFramesPerWrite dirty resources, then — once the
// snapshot is out — the sync frame.
func (c *connection) nextBatch() []channel.Frame {
	ns := c.ns
	ns.mu.Lock()
	defer ns.mu.Unlock()
	frames := c.acks
	c.acks = nil
	now := c.hub.now()
	for len(c.dirty) > 0 && len(frames) < c.hub.opts.MaxFramesPerWrite {
		key := c.dirty[0]
		c.dirty = c.dirty[1:]
		delete(c.dirtySet, key)
		e, ok := ns.resources[key]
		if !ok {
			continue
		}
		seq := c.nextSeq
		c.nextSeq++
		op := channel.OpInsert
		if e.deleted {
			op = channel.OpDelete
		}
		frames = append(frames, channel.Frame{
			Header: channel.Header{Namespace: key.Namespace, ResourceKind: key.Kind, ResourceName: key.Name, Operation: op},
			// The object bytes are shared, never mutated: Publish takes ownership of them.
			Content: e.object,
			Seq:     seq,
			Version: e.version,
		})
		if old, ok := c.pendingByKey[key]; ok {
			delete(c.pendingBySeq, old.seq)
		}
		c.pendingByKey[key] = pending{seq: seq, version: e.version, sentAt: now}
		c.pendingBySeq[seq] = key
	}
	if len(c.dirty) == 0 {
		c.dirty = nil // let the backing array go after a large snapshot
		if c.syncPending {
			c.syncPending = false
			c.syncSeq = c.nextSeq
			c.nextSeq++
			c.syncSentAt = now
			frames = append(frames, channel.Frame{
				Header:  channel.Header{Operation: channel.OpSync},
				Content: marshalSync(ns.snapshotEntries()),
				Seq:     c.syncSeq,
			})
		}
	}
	return frames
}

// handleAck takes the node's acknowledgement of frame seq; true when it acknowledged the sync
// frame: the node has applied the snapshot this connection began with.
func (c *connection) handleAck(seq uint64) (syncAcked bool) {
	ns := c.ns
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if seq == c.syncSeq {
		c.syncSeq = 0
		c.hub.metrics.FramesAcked.Inc()
		return true
	}
	key, ok := c.pendingBySeq[seq]
	if !ok {
		return false // a late ack of a frame already resent or superseded
	}
	delete(c.pendingBySeq, seq)
	p := c.pendingByKey[key]
	delete(c.pendingByKey, key)
	c.hub.metrics.FramesAcked.Inc()
	if c.hub.onAck != nil {
		c.hub.onAck(ns.name, key, p.version)
	}
	if e, ok := ns.resources[key]; ok && e.deleted && e.version == p.version {
		delete(ns.resources, key)
	}
	return false
}

// checkResends queues again every frame unacknowledged for longer than ResendAfter.
func (c *connection) checkResends() {
	ns := c.ns
	ns.mu.Lock()
	defer ns.mu.Unlock()
	now := c.hub.now()
	for key, p := range c.pendingByKey {
		if now.Sub(p.sentAt) < c.hub.opts.ResendAfter {
			continue
		}
		delete(c.pendingByKey, key)
		delete(c.pendingBySeq, p.seq)
		c.markDirty(key)
		c.hub.metrics.FramesResent.Inc()
	}
	if c.syncSeq != 0 && now.Sub(c.syncSentAt) >= c.hub.opts.ResendAfter {
		c.syncSeq = 0
		c.syncPending = true
		c.hub.metrics.FramesResent.Inc()
		c.signal()
	}
}

func (c *connection) readLoop(ctx context.Context) {
	logger := klog.FromContext(ctx)
	opts := c.hub.opts
	c.ws.SetReadLimit(int64(opts.MaxFrameBytes))
	deadline := func() time.Time { return c.hub.now().Add(3 * opts.PingInterval) }
	if err := c.ws.SetReadDeadline(deadline()); err != nil {
		return
	}
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(deadline()) })
	for {
		msgType, data, err := c.ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				logger.V(2).Info("Read failed; closing the connection", "err", err)
			}
			return
		}
		if err := c.ws.SetReadDeadline(deadline()); err != nil {
			return
		}
		if msgType != websocket.TextMessage {
			c.hub.metrics.MalformedFrames.Inc()
			logger.Info("Ignoring a non-text websocket message", "type", msgType)
			continue
		}
		frame, err := channel.Decode(data, opts.MaxFrameBytes)
		if err != nil {
			c.hub.metrics.MalformedFrames.Inc()
			logger.Info("Ignoring a malformed frame", "err", err)
			continue
		}
		switch frame.Header.Operation {
		case channel.OpAck:
			if c.handleAck(frame.Ack) {
				// The end of the snapshot "LC connected" began (the fault campaign counts
				// snapshots a partition interrupted by these two lines).
				logger.V(2).Info("Snapshot acknowledged")
			}
		case channel.OpStatus:
			// Waits while the report goroutine is behind: the LC's window of unacknowledged
			// reports is the back-pressure. A closed connection stops the wait (the report
			// goroutine may be stuck on a mark write) before the report is taken, so the LC's
			// replay of it on its next connection is new, not a duplicate.
			select {
			case c.slots <- struct{}{}:
			case <-c.done:
				return
			}
			// Never blocks: the slot reserves room in the queue.
			duplicate, taken := c.hub.takeReport(c.ns, c, frame)
			if !taken {
				<-c.slots // a replaced connection: nothing to hand over
				continue
			}
			c.reports <- takenReport{frame: frame, duplicate: duplicate, store: c.store}
		default:
			c.hub.metrics.MalformedFrames.Inc()
			logger.Info("Ignoring a frame an LC may not send", "operation", frame.Header.Operation)
		}
	}
}

// queueAck queues the acknowledgement of a handled report; false when too many
// acknowledgements are waiting.
func (c *connection) queueAck(seq uint64, ackError string) bool {
	ns := c.ns
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if len(c.acks) >= c.hub.opts.MaxQueuedAcks {
		return false
	}
	c.acks = append(c.acks, channel.Frame{Header: channel.Header{Operation: channel.OpAck}, Ack: seq, Error: ackError})
	c.signal()
	return true
}
