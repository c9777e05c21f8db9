package gmclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// sentReport is an outbox entry sent on this connection and not yet acknowledged.
type sentReport struct {
	seq uint64
	key channel.Key
}

// outboxWindow tracks the reports in flight on one connection. A new connection starts with an
// empty window, so everything still pending is sent again from the first entry.
type outboxWindow struct {
	max      int
	inflight []sentReport // in sequence order
	lastSent uint64       // highest sequence number sent or dropped on this connection

	// undeliverable is an entry that can never be sent (damaged, unreadable or too large). It
	// is dropped once everything before it is acknowledged, because store.Ack removes every
	// entry up to the sequence number it is given.
	undeliverable       uint64
	undeliverableReason error
}

func newOutboxWindow(maxInflight int) outboxWindow {
	return outboxWindow{max: maxInflight, inflight: make([]sentReport, 0, maxInflight)}
}

// fillWindow sends pending reports until MaxInflight are unacknowledged or the outbox is
// drained. It fails only when writing to GM fails; trouble reading the store is logged and
// retried at the next wake-up, since the connection itself is fine.
func (cn *connection) fillWindow(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	st := cn.client.store
	w := &cn.outbox
	for {
		if w.undeliverable != 0 {
			if len(w.inflight) > 0 {
				return nil
			}
			if !cn.dropUndeliverable(ctx) {
				return nil
			}
		}
		room := w.max - len(w.inflight)
		if room <= 0 {
			return nil
		}
		entries, err := st.Pending(w.lastSent, room)
		if err != nil {
			if _, damaged := damagedOutboxSeq(err); !damaged {
				logger.Error(err, "Cannot read the outbox; retrying later")
				return nil
			}
			// One damaged entry fails the whole page. Reading a single entry tells whether the
			// damaged one is next, or sends the healthy entries before it one at a time.
			entries, err = st.Pending(w.lastSent, 1)
			if err != nil {
				seq, damaged := damagedOutboxSeq(err)
				if !damaged {
					logger.Error(err, "Cannot read the outbox; retrying later")
					return nil
				}
				w.undeliverable, w.undeliverableReason = seq, err
				continue
			}
		}
		if len(entries) == 0 {
			return nil
		}
		for _, entry := range entries {
			sent, err := cn.sendReport(entry)
			if err != nil {
				return err
			}
			if !sent {
				break // undeliverable: the next pass drops it when its turn comes
			}
		}
	}
}

// sendReport writes one outbox entry. It returns false without error when the entry cannot be
// sent and has been marked undeliverable.
func (cn *connection) sendReport(entry store.OutboxEntry) (bool, error) {
	w := &cn.outbox
	report, err := DecodeReport(entry.Payload)
	var data []byte
	var frame channel.Frame
	if err == nil {
		frame = report.frame(entry.Seq)
		data, err = channel.Encode(&frame)
	}
	if err == nil && len(data) > cn.client.opts.MaxFrameBytes {
		err = fmt.Errorf("report about %s is %d bytes on the wire, more than the frame limit of %d", report.Key, len(data), cn.client.opts.MaxFrameBytes)
	}
	if err != nil {
		w.undeliverable, w.undeliverableReason = entry.Seq, err
		return false, nil
	}
	if err := cn.writeRaw(&frame, data); err != nil {
		return false, err
	}
	w.inflight = append(w.inflight, sentReport{seq: entry.Seq, key: report.Key})
	w.lastSent = entry.Seq
	cn.client.metrics.reportsSent.Inc()
	return true, nil
}

// dropUndeliverable removes the undeliverable entry from the outbox; everything before it has
// been acknowledged. It returns false if the store refused, to retry at the next wake-up.
func (cn *connection) dropUndeliverable(ctx context.Context) bool {
	w := &cn.outbox
	seq := w.undeliverable
	if _, err := cn.client.store.Ack(seq); err != nil {
		klog.FromContext(ctx).Error(err, "Cannot drop an undeliverable report from the outbox; retrying later", "seq", seq)
		return false
	}
	klog.FromContext(ctx).Error(w.undeliverableReason, "Dropped an outbox entry that can never be delivered to GM", "seq", seq)
	cn.client.metrics.reportsDropped.Inc()
	w.lastSent = max(w.lastSent, seq)
	w.undeliverable, w.undeliverableReason = 0, nil
	return true
}

// handleReportAck removes the acknowledged report, and any before it, from the window and the
// outbox. GM handles reports in order and acknowledges each, so an ack covers everything before
// it. A rejected report is dropped too: sending it again would be rejected again.
func (cn *connection) handleReportAck(ctx context.Context, ack *channel.Frame) {
	logger := klog.FromContext(ctx)
	w := &cn.outbox
	if len(w.inflight) == 0 || ack.Ack < w.inflight[0].seq || ack.Ack > w.lastSent {
		// A duplicate, or an ack of something never sent on this connection: removing entries
		// on its word could lose reports GM never saw.
		logger.V(2).Info("Ignoring an acknowledgement of no report in flight", "seq", ack.Ack)
		return
	}
	done := 0
	var key channel.Key
	for done < len(w.inflight) && w.inflight[done].seq <= ack.Ack {
		if w.inflight[done].seq == ack.Ack {
			key = w.inflight[done].key
		}
		done++
	}
	w.inflight = slices.Delete(w.inflight, 0, done)
	if ack.Error != "" {
		cn.client.metrics.reportsRejected.Inc()
		logger.Error(errors.New(ack.Error), "GM rejected a report; dropping it", "seq", ack.Ack, "resource", key.String())
	} else {
		cn.client.metrics.reportsAccepted.Inc()
		logger.V(4).Info("GM accepted a report", "seq", ack.Ack, "resource", key.String())
	}
	if _, err := cn.client.store.Ack(ack.Ack); err != nil {
		// The entries stay and are sent again after the next reconnect; GM drops them as
		// duplicates. The next successful ack removes them too.
		logger.Error(err, "Cannot remove acknowledged reports from the outbox", "seq", ack.Ack)
	}
}

// damagedOutboxSeq returns the sequence number of the damaged outbox entry err reports.
func damagedOutboxSeq(err error) (uint64, bool) {
	var corrupt *store.CorruptError
	if !errors.As(err, &corrupt) || corrupt.Bucket != "outbox" {
		return 0, false
	}
	seq, perr := strconv.ParseUint(corrupt.Key, 10, 64)
	if perr != nil || seq == 0 {
		return 0, false
	}
	return seq, true
}
