package gmclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
)

// downstreamQueue bounds the frames read and not yet applied. When it is full the reader waits,
// which is the back-pressure GM needs: it keeps unacknowledged frames and resends them anyway.
const downstreamQueue = 64

// connection is one live websocket. Three goroutines share it, each owning one job, because
// gorilla allows one concurrent reader and one concurrent writer:
//
//   - the reader decodes frames, hands resource frames to the applier and report acks to the
//     writer, and keeps the read deadline alive;
//   - the applier writes resource frames to the store and calls the Handler, in frame order;
//   - the writer owns every write: acks of applied frames, reports, pings.
type connection struct {
	client *Client
	ws     *websocket.Conn
	// batch gathers the writes of one writer pass into as few system calls as possible; nil
	// when the websocket is not over a channel.BatchConn.
	batch *channel.BatchConn
	// appCtx is Run's context with the connection's logger: the Handler's work must not be
	// cancelled just because the connection broke.
	appCtx context.Context

	downstream chan *channel.Frame
	frameAcks  chan uint64
	reportAcks chan *channel.Frame

	// The writer's outbox window; only the writer goroutine touches it.
	outbox outboxWindow
}

// serve runs the connection until it breaks or ctx ends, and returns why it ended.
func (c *Client) serve(ctx context.Context, ws *websocket.Conn) error {
	connCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	conn := &connection{
		client:     c,
		ws:         ws,
		appCtx:     ctx,
		downstream: make(chan *channel.Frame, downstreamQueue),
		frameAcks:  make(chan uint64, downstreamQueue),
		reportAcks: make(chan *channel.Frame, c.opts.MaxInflight),
		outbox:     newOutboxWindow(c.opts.MaxInflight),
		batch:      batchConnOf(ws),
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		cancel(conn.readLoop(connCtx))
	})
	wg.Go(func() {
		cancel(conn.applyLoop(connCtx))
	})
	cancel(conn.writeLoop(connCtx))
	// Closing the socket is what unblocks the reader; the others watch connCtx.
	_ = ws.Close() // the connection is being abandoned; a close error changes nothing
	wg.Wait()
	return context.Cause(connCtx)
}

// batchConnOf finds the channel.BatchConn the websocket writes through, under TLS or not.
func batchConnOf(ws *websocket.Conn) *channel.BatchConn {
	nc := ws.NetConn()
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	b, _ := nc.(*channel.BatchConn)
	return b
}

// hold starts gathering the writer's writes; flush sends them.
func (cn *connection) hold() {
	if cn.batch != nil {
		cn.batch.Hold()
	}
}

func (cn *connection) flush() error {
	if cn.batch == nil {
		return nil
	}
	if err := cn.batch.Flush(); err != nil {
		return fmt.Errorf("writing to GM: %w", err)
	}
	return nil
}

// maxAcksPerWrite bounds the acknowledgements the writer gathers before looking at its other work.
const maxAcksPerWrite = downstreamQueue

// writeAcks writes the ack of seq and of every further applied frame already waiting, in one
// write.
func (cn *connection) writeAcks(seq uint64) error {
	cn.hold()
	for n := 1; ; n++ {
		if err := cn.write(&channel.Frame{Header: channel.Header{Operation: channel.OpAck}, Ack: seq}); err != nil {
			return err
		}
		if n == maxAcksPerWrite {
			break
		}
		select {
		case seq = <-cn.frameAcks:
			continue
		default:
		}
		break
	}
	return cn.flush()
}

// readDeadline is how long the connection may stay silent: three ping intervals, so one or two
// lost pongs do not cut a healthy connection, but a half-open one is noticed.
func (cn *connection) readDeadline() time.Time {
	return time.Now().Add(3 * cn.client.opts.PingInterval)
}

func (cn *connection) readLoop(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	opts := cn.client.opts
	cn.ws.SetReadLimit(int64(opts.MaxFrameBytes))
	if err := cn.ws.SetReadDeadline(cn.readDeadline()); err != nil {
		return fmt.Errorf("setting the read deadline: %w", err)
	}
	cn.ws.SetPongHandler(func(string) error { return cn.ws.SetReadDeadline(cn.readDeadline()) })
	// GM's pings prove it alive just like pongs do; answer them as gorilla's default handler
	// would, and extend the deadline.
	cn.ws.SetPingHandler(func(data string) error {
		if err := cn.ws.SetReadDeadline(cn.readDeadline()); err != nil {
			return err
		}
		err := cn.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(opts.WriteTimeout))
		var netErr net.Error
		if errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &netErr) && netErr.Timeout()) {
			return nil // the connection is closing or the write side will notice on its own
		}
		return err
	})
	for {
		msgType, data, err := cn.ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("reading from GM: %w", err)
		}
		if err := cn.ws.SetReadDeadline(cn.readDeadline()); err != nil {
			return fmt.Errorf("setting the read deadline: %w", err)
		}
		if msgType != websocket.TextMessage {
			cn.client.metrics.framesApplied.WithLabelValues(frameRejected).Inc()
			logger.Info("Ignoring a non-text websocket message from GM", "type", msgType)
			continue
		}
		frame, err := channel.Decode(data, opts.MaxFrameBytes)
		if err != nil {
			// Not acknowledged: GM resends it, and the log says why it keeps coming.
			cn.client.metrics.framesApplied.WithLabelValues(frameRejected).Inc()
			logger.Error(err, "Ignoring a malformed frame from GM")
			continue
		}
		switch frame.Header.Operation {
		case channel.OpAck:
			if !send(ctx, cn.reportAcks, frame) {
				return context.Cause(ctx)
			}
		case channel.OpInsert, channel.OpUpdate, channel.OpDelete, channel.OpSync:
			if !send(ctx, cn.downstream, frame) {
				return context.Cause(ctx)
			}
		default:
			cn.client.metrics.framesApplied.WithLabelValues(frameRejected).Inc()
			logger.Error(nil, "Ignoring a frame GM may not send", "operation", frame.Header.Operation, "seq", frame.Seq)
		}
	}
}

// applyLoop applies resource frames in order and queues their acknowledgements.
func (cn *connection) applyLoop(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	for {
		var frame *channel.Frame
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case frame = <-cn.downstream:
		}
		if err := cn.client.apply(cn.appCtx, frame); err != nil {
			// Not acknowledged, so GM sends it again: a store error may be transient, and an
			// invalid frame is GM's bug worth seeing repeatedly in the log.
			cn.client.metrics.framesApplied.WithLabelValues(frameRejected).Inc()
			logger.Error(err, "Cannot apply a frame from GM; leaving it unacknowledged", "operation", frame.Header.Operation, "seq", frame.Seq, "resource", frame.Header.Key().String())
			continue
		}
		if !send(ctx, cn.frameAcks, frame.Seq) {
			return context.Cause(ctx)
		}
	}
}

func send[T any](ctx context.Context, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

func (cn *connection) writeLoop(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	opts := cn.client.opts
	ticker := time.NewTicker(min(opts.PingInterval, outboxPollInterval))
	defer ticker.Stop()
	lastPing := time.Now()

	// Everything still pending goes out again from the first entry: GM drops duplicates.
	if err := cn.fillWindowBatched(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			if cn.appCtx.Err() != nil {
				cn.sayGoodbye()
			}
			return context.Cause(ctx)
		case seq := <-cn.frameAcks:
			if err := cn.writeAcks(seq); err != nil {
				return err
			}
		case ack := <-cn.reportAcks:
			cn.handleReportAck(ctx, ack)
			if err := cn.fillWindowBatched(ctx); err != nil {
				return err
			}
		case <-cn.client.notify:
			if err := cn.fillWindowBatched(ctx); err != nil {
				return err
			}
		case now := <-ticker.C:
			if now.Sub(lastPing) >= opts.PingInterval {
				lastPing = now
				if err := cn.ws.WriteControl(websocket.PingMessage, nil, now.Add(opts.WriteTimeout)); err != nil {
					return fmt.Errorf("pinging GM: %w", err)
				}
				logger.V(5).Info("Pinged GM")
			}
			if err := cn.fillWindow(ctx); err != nil {
				return err
			}
		}
	}
}

// fillWindowBatched sends the reports that fit the window in as few writes as possible.
func (cn *connection) fillWindowBatched(ctx context.Context) error {
	cn.hold()
	if err := cn.fillWindow(ctx); err != nil {
		_ = cn.flush() // the connection is failing anyway; fillWindow's error says why
		return err
	}
	return cn.flush()
}

func (cn *connection) write(f *channel.Frame) error {
	data, err := channel.Encode(f)
	if err != nil {
		return err
	}
	return cn.writeRaw(f, data)
}

func (cn *connection) writeRaw(f *channel.Frame, data []byte) error {
	if err := cn.ws.SetWriteDeadline(time.Now().Add(cn.client.opts.WriteTimeout)); err != nil {
		return fmt.Errorf("setting the write deadline: %w", err)
	}
	if err := cn.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("writing %s frame %d to GM: %w", f.Header.Operation, max(f.Seq, f.Ack), err)
	}
	return nil
}

// sayGoodbye tells GM the LC is leaving on purpose, so it does not log a broken connection.
func (cn *connection) sayGoodbye() {
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "LC shutting down")
	// Best effort: the socket is closed right after either way.
	_ = cn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}
