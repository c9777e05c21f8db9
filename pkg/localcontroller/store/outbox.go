package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrOutboxFull is wrapped by Enqueue and EnqueueWith when a report does not fit: the outbox
// holds MaxOutbox reports, its byte budget is used, or the report's class has used its share
// (see Class). The returned error says which bound and by how much. Nothing queued is changed
// by the refusal, and the store never discards a queued report to make room: the caller decides
// what to do with the refused one.
var ErrOutboxFull = errors.New("outbox is full")

// Class says who a report comes from, which decides how much of the outbox it may take. The
// shares keep reports that can be flooded from the node network (a worker posts as often and as
// much as it likes) from crowding out the reports the LC itself must deliver.
type Class uint8

const (
	// ClassOwn is a report the LC makes itself: incremental learning stage reports, dataset
	// sample counts. It may use the whole budget; workers can never take the last
	// 100-WorkerSharePercent percent of it.
	ClassOwn Class = iota
	// ClassWorkerEvent is a worker's report relayed as it is because it records an event (a
	// transition, a completed or failed stage): never coalesced. Worker reports of both classes
	// together may use WorkerSharePercent of the budget.
	ClassWorkerEvent
	// ClassWorkerMetrics is a worker's periodic report of its latest cumulative state (joint
	// inference counters, a training round in progress). A newer report of the same stream
	// replaces the queued one (EnqueueOptions.Stream). Metrics may use MetricsSharePercent of
	// the budget, so they can never crowd out worker events either.
	ClassWorkerMetrics

	numClasses
)

// Shares of the outbox, in percent of MaxOutboxBytes and of MaxOutbox.
const (
	// WorkerSharePercent bounds ClassWorkerEvent and ClassWorkerMetrics together.
	WorkerSharePercent = 50
	// MetricsSharePercent bounds ClassWorkerMetrics.
	MetricsSharePercent = 25
)

// Classes lists every class in order, for callers that report per class.
func Classes() []Class { return []Class{ClassOwn, ClassWorkerEvent, ClassWorkerMetrics} }

// String returns the class as a metric label value.
func (c Class) String() string {
	switch c {
	case ClassOwn:
		return "own"
	case ClassWorkerEvent:
		return "worker_event"
	case ClassWorkerMetrics:
		return "worker_metrics"
	default:
		return "unknown(" + strconv.Itoa(int(c)) + ")"
	}
}

// maxStreamBytes bounds a stream name; streams are names of workers and owners, not data.
const maxStreamBytes = 1024

// EnqueueOptions say how a report uses the outbox. The zero value is a report of the LC's own
// that is never coalesced, as Enqueue queues it.
type EnqueueOptions struct {
	Class Class
	// Stream identifies the reports that supersede each other, e.g. one worker's metrics about
	// one owner. It is required for ClassWorkerMetrics and refused for the other classes. A
	// queued report of the same stream is removed in the same transaction that appends the new
	// one, so GM receives the newest state and the outbox holds one entry per stream. The new
	// report gets a new sequence number: it is sent after everything queued before it, and if
	// the old one was already sent GM sees both, in order.
	Stream string
}

func (o EnqueueOptions) validate() error {
	switch {
	case o.Class >= numClasses:
		return fmt.Errorf("unknown report class %d", o.Class)
	case o.Class == ClassWorkerMetrics && o.Stream == "":
		return errors.New("a worker-metrics report needs a stream to be coalesced by")
	case o.Class != ClassWorkerMetrics && o.Stream != "":
		return fmt.Errorf("only worker-metrics reports are coalesced, not %s reports", o.Class)
	case len(o.Stream) > maxStreamBytes:
		return fmt.Errorf("stream is %d bytes, more than %d", len(o.Stream), maxStreamBytes)
	}
	return nil
}

// OutboxEntry is one report waiting for GM's acknowledgement.
type OutboxEntry struct {
	// Seq numbers the entry. Sequence numbers start at 1, strictly increase in enqueue order and
	// are never reused, even across restarts and after Ack removed the entries. They have gaps
	// where a coalesced entry was replaced.
	Seq        uint64
	Payload    []byte
	EnqueuedAt time.Time
	// Class and Stream are what the entry was queued with.
	Class  Class
	Stream string
}

// Outbox keys are big-endian sequence numbers, so cursor order is enqueue order.
func outboxKey(seq uint64) []byte { return encodeUint64(seq) }

// encodeOutboxValue frames an entry. Entries of the LC's own class keep the plain form older
// binaries read; the others carry class and stream: stamp (8) | class (1) | stream length (2) |
// stream | payload.
func encodeOutboxValue(stamp time.Time, opts EnqueueOptions, payload []byte) []byte {
	ts := encodeUint64(uint64(stamp.UnixNano()))
	if opts.Class == ClassOwn {
		return encodeFrame(recordOutbox, ts, payload)
	}
	tag := make([]byte, 3, 3+len(opts.Stream))
	tag[0] = byte(opts.Class)
	binary.BigEndian.PutUint16(tag[1:3], uint16(len(opts.Stream)))
	tag = append(tag, opts.Stream...)
	return encodeFrame(recordOutboxTagged, ts, tag, payload)
}

// parseOutboxBody splits a checked frame body into its parts; payload points into body.
func parseOutboxBody(kind recordKind, body []byte) (stamp uint64, opts EnqueueOptions, payload []byte, err error) {
	switch kind {
	case recordOutbox, recordOutboxTagged:
	default:
		return 0, opts, nil, fmt.Errorf("holds a %s record, want outbox", kind)
	}
	if len(body) < 8 {
		return 0, opts, nil, fmt.Errorf("body is %d bytes, too short for a timestamp", len(body))
	}
	stamp, rest := binary.BigEndian.Uint64(body[:8]), body[8:]
	if kind == recordOutbox {
		return stamp, opts, rest, nil
	}
	if len(rest) < 3 {
		return 0, opts, nil, fmt.Errorf("body is %d bytes, too short for its class and stream", len(body))
	}
	opts.Class = Class(rest[0])
	n := int(binary.BigEndian.Uint16(rest[1:3]))
	if len(rest) < 3+n {
		return 0, opts, nil, fmt.Errorf("stream of %d bytes runs past the end of the body", n)
	}
	opts.Stream = string(rest[3 : 3+n])
	if err := opts.validate(); err != nil {
		return 0, opts, nil, err
	}
	return stamp, opts, rest[3+n:], nil
}

func decodeOutboxEntry(rawKey, raw []byte) (OutboxEntry, error) {
	if len(rawKey) != 8 {
		return OutboxEntry{}, &CorruptError{Bucket: string(bucketOutbox), Key: fmt.Sprintf("%x", rawKey), Reason: fmt.Sprintf("key is %d bytes, want 8", len(rawKey))}
	}
	seq := binary.BigEndian.Uint64(rawKey)
	kind, body, err := decodeFrame(raw)
	var (
		stamp   uint64
		opts    EnqueueOptions
		payload []byte
	)
	if err == nil {
		stamp, opts, payload, err = parseOutboxBody(kind, body)
	}
	if err != nil {
		return OutboxEntry{}, &CorruptError{Bucket: string(bucketOutbox), Key: strconv.FormatUint(seq, 10), Reason: err.Error()}
	}
	return OutboxEntry{
		Seq:        seq,
		Payload:    payload,
		EnqueuedAt: time.Unix(0, int64(stamp)),
		Class:      opts.Class,
		Stream:     opts.Stream,
	}, nil
}

// entryOverhead is what bbolt stores per key besides the key and value (its leaf element).
const entryOverhead = 16

// entryInfo is what an outbox entry counts for.
type entryInfo struct {
	class  Class
	stream string
	// size is the entry's accounted bytes: key, value and bbolt's per-key overhead, plus its
	// stream index entry if it has one.
	size uint64
	// damaged entries count as ClassOwn without a stream, whatever they were queued as.
	damaged bool
}

func inspectEntry(key, raw []byte) entryInfo {
	info := entryInfo{class: ClassOwn, size: uint64(len(key) + len(raw) + entryOverhead)}
	kind, body, err := checkFrame(raw)
	var opts EnqueueOptions
	if err == nil {
		_, opts, _, err = parseOutboxBody(kind, body)
	}
	if err != nil || len(key) != 8 {
		info.damaged = true
		return info
	}
	info.class, info.stream = opts.Class, opts.Stream
	if opts.Stream != "" {
		info.size += uint64(len(opts.Stream) + 8 + entryOverhead)
	}
	return info
}

// usage is what the pending entries take, per class. It is kept in the meta bucket and
// written in the same transaction as the entries.
type usage struct {
	count [numClasses]uint64
	bytes [numClasses]uint64
}

func (u *usage) add(info entryInfo) {
	u.count[info.class]++
	u.bytes[info.class] += info.size
}

// remove takes info away and reports whether the usage held it; false means the usage had
// drifted from the entries and must be recounted.
func (u *usage) remove(info entryInfo) bool {
	if u.count[info.class] == 0 || u.bytes[info.class] < info.size {
		return false
	}
	u.count[info.class]--
	u.bytes[info.class] -= info.size
	return true
}

func (u usage) sum(classes ...Class) (count, size uint64) {
	for _, c := range classes {
		count += u.count[c]
		size += u.bytes[c]
	}
	return count, size
}

func (u usage) total() (count, size uint64) { return u.sum(Classes()...) }

func (u usage) String() string {
	parts := make([]string, 0, numClasses)
	for _, c := range Classes() {
		parts = append(parts, fmt.Sprintf("%s=%d/%dB", c, u.count[c], u.bytes[c]))
	}
	return strings.Join(parts, " ")
}

const usageLen = 2 * int(numClasses) * 8

func putUsage(meta *bolt.Bucket, u usage) error {
	body := make([]byte, 0, usageLen)
	for c := range numClasses {
		body = binary.BigEndian.AppendUint64(body, u.count[c])
		body = binary.BigEndian.AppendUint64(body, u.bytes[c])
	}
	if err := meta.Put(metaOutboxUsage, encodeFrame(recordMeta, body)); err != nil {
		return fmt.Errorf("writing meta %q: %w", metaOutboxUsage, err)
	}
	return nil
}

// decodeUsage reads the usage; a missing value reads as an empty outbox.
func decodeUsage(raw []byte) (usage, error) {
	var u usage
	if raw == nil {
		return u, nil
	}
	kind, body, err := checkFrame(raw)
	if err == nil && kind != recordMeta {
		err = fmt.Errorf("holds a %s record, want meta", kind)
	}
	if err == nil && len(body) != usageLen {
		err = fmt.Errorf("body is %d bytes, want %d", len(body), usageLen)
	}
	if err != nil {
		return usage{}, &CorruptError{Bucket: string(bucketMeta), Key: string(metaOutboxUsage), Reason: err.Error()}
	}
	for c := range numClasses {
		u.count[c] = binary.BigEndian.Uint64(body[16*int(c):])
		u.bytes[c] = binary.BigEndian.Uint64(body[16*int(c)+8:])
	}
	return u, nil
}

// scanOutbox counts the entries: their usage, the newest entry of each stream and the highest
// sequence number.
func scanOutbox(outbox *bolt.Bucket) (u usage, streams map[string]uint64, maxSeq uint64) {
	streams = map[string]uint64{}
	cursor := outbox.Cursor()
	for key, value := cursor.First(); key != nil; key, value = cursor.Next() {
		info := inspectEntry(key, value)
		u.add(info)
		if len(key) != 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(key)
		maxSeq = max(maxSeq, seq)
		if info.stream != "" {
			streams[info.stream] = max(streams[info.stream], seq)
		}
	}
	return u, streams, maxSeq
}

// reconcileStreams makes the stream index equal want.
func (s *Store) reconcileStreams(index *bolt.Bucket, want map[string]uint64) error {
	var stale [][]byte
	seen := 0
	cursor := index.Cursor()
	for key, value := cursor.First(); key != nil; key, value = cursor.Next() {
		seq, ok := want[string(key)]
		if ok && len(value) == 8 && binary.BigEndian.Uint64(value) == seq {
			seen++
			continue
		}
		stale = append(stale, bytes.Clone(key))
	}
	if len(stale) == 0 && seen == len(want) {
		return nil
	}
	s.logger.Error(nil, "Outbox stream index disagrees with its entries; rebuilding it", "stale", len(stale), "indexed", seen, "streams", len(want))
	for _, key := range stale {
		if err := index.Delete(key); err != nil {
			return fmt.Errorf("repairing the outbox stream index: %w", err)
		}
	}
	for stream, seq := range want {
		if err := index.Put([]byte(stream), outboxKey(seq)); err != nil {
			return fmt.Errorf("repairing the outbox stream index: %w", err)
		}
	}
	return nil
}

// readUsage reads the usage kept in the meta bucket. If it is damaged it is recounted from the
// entries and rewritten, so a damaged counter never blocks reporting.
func (s *Store) readUsage(tx *bolt.Tx) (usage, error) {
	meta := tx.Bucket(bucketMeta)
	u, err := decodeUsage(meta.Get(metaOutboxUsage))
	if err == nil {
		return u, nil
	}
	s.logger.Error(err, "Recounting outbox entries")
	return s.recountUsage(tx)
}

func (s *Store) recountUsage(tx *bolt.Tx) (usage, error) {
	u, _, _ := scanOutbox(tx.Bucket(bucketOutbox))
	if err := putUsage(tx.Bucket(bucketMeta), u); err != nil {
		return usage{}, err
	}
	return u, nil
}

// share is percent (at most 100) of limit, rounded down, without overflowing for a limit near
// the largest uint64 (limit*percent would wrap around to a small share).
func share(limit uint64, percent uint64) uint64 {
	return limit/100*percent + limit%100*percent/100
}

// checkFits returns an error wrapping ErrOutboxFull unless after, the usage with a new report of
// class c, is within the bounds that apply to c.
func (s *Store) checkFits(after usage, c Class, size uint64) error {
	maxCount := uint64(s.maxOutbox)
	count, total := after.total()
	if count > maxCount {
		return fmt.Errorf("%w: %d reports pending (limit %d)", ErrOutboxFull, count-1, maxCount)
	}
	if total > s.maxBytes {
		return fmt.Errorf("%w: a %s report of %d bytes does not fit: %d of the %d-byte budget are in use",
			ErrOutboxFull, c, size, total-size, s.maxBytes)
	}
	check := func(what string, percent uint64, classes ...Class) error {
		count, used := after.sum(classes...)
		if limit := share(maxCount, percent); count > limit {
			return fmt.Errorf("%w: %s reports may take %d%% of the outbox, %d reports, and %d are pending",
				ErrOutboxFull, what, percent, limit, count-1)
		}
		if limit := share(s.maxBytes, percent); used > limit {
			return fmt.Errorf("%w: a %s report of %d bytes does not fit: %s reports may take %d%% of the %d-byte budget, %d bytes, and %d are in use",
				ErrOutboxFull, c, size, what, percent, s.maxBytes, limit, used-size)
		}
		return nil
	}
	if c == ClassOwn {
		return nil
	}
	if err := check("worker", WorkerSharePercent, ClassWorkerEvent, ClassWorkerMetrics); err != nil {
		return err
	}
	if c == ClassWorkerMetrics {
		return check("worker-metrics", MetricsSharePercent, ClassWorkerMetrics)
	}
	return nil
}

// Enqueue appends a report of the LC's own class (see EnqueueWith) and returns its sequence
// number.
func (s *Store) Enqueue(payload []byte) (uint64, error) {
	return s.EnqueueWith(payload, EnqueueOptions{})
}

// EnqueueWith appends a report and returns its sequence number. It returns only after the entry
// is committed: bbolt fsyncs the file on every commit, so a report accepted here survives a
// crash of the LC or of the node. A report that does not fit in what its class may use fails
// with an error wrapping ErrOutboxFull; a report with a stream first replaces the queued report
// of its stream (which also frees what that one used).
func (s *Store) EnqueueWith(payload []byte, opts EnqueueOptions) (uint64, error) {
	if len(payload) == 0 {
		return 0, errors.New("enqueueing report: payload is empty")
	}
	if err := opts.validate(); err != nil {
		return 0, fmt.Errorf("enqueueing report: %w", err)
	}
	var (
		seq      uint64
		replaced bool
	)
	err := s.db.Update(func(tx *bolt.Tx) error {
		replaced = false
		u, err := s.readUsage(tx)
		if err != nil {
			return err
		}
		outbox := tx.Bucket(bucketOutbox)
		index := tx.Bucket(bucketOutboxStreams)
		var oldKey []byte
		recount := false
		if opts.Stream != "" {
			if key := index.Get([]byte(opts.Stream)); len(key) == 8 {
				if raw := outbox.Get(key); raw != nil {
					oldKey = bytes.Clone(key)
					old := inspectEntry(oldKey, raw)
					recount = old.damaged || !u.remove(old)
				}
			}
		}
		// The sequence is read, not yet taken: a refused report must not use up a number.
		next := outbox.Sequence() + 1
		key := outboxKey(next)
		value := encodeOutboxValue(s.now(), opts, payload)
		info := inspectEntry(key, value)
		u.add(info)
		if err := s.checkFits(u, opts.Class, info.size); err != nil {
			return err
		}
		if oldKey != nil {
			if err := outbox.Delete(oldKey); err != nil {
				return err
			}
			replaced = true
		}
		// The bucket's sequence is part of this transaction: if the commit fails it rolls
		// back with the entry, so numbers are never handed out twice.
		if _, err := outbox.NextSequence(); err != nil {
			return fmt.Errorf("allocating sequence number: %w", err)
		}
		if err := outbox.Put(key, value); err != nil {
			return err
		}
		if opts.Stream != "" {
			if err := index.Put([]byte(opts.Stream), key); err != nil {
				return err
			}
		}
		if recount {
			s.logger.Error(nil, "Outbox usage disagreed with a replaced entry; recounting", "seq", binary.BigEndian.Uint64(oldKey))
			_, err = s.recountUsage(tx)
		} else {
			err = putUsage(tx.Bucket(bucketMeta), u)
		}
		if err != nil {
			return err
		}
		seq = next
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrOutboxFull) {
			s.rejected[opts.Class].Add(1)
		}
		return 0, fmt.Errorf("enqueueing report: %w", err)
	}
	if replaced {
		s.coalesced.Add(1)
	}
	return seq, nil
}

// Pending returns up to limit entries with a sequence number greater than afterSeq, in
// sequence order; limit zero or negative means all. The GM client calls it with the last
// sequence it sent to page through the backlog after a reconnect.
func (s *Store) Pending(afterSeq uint64, limit int) ([]OutboxEntry, error) {
	if afterSeq == math.MaxUint64 {
		return nil, nil
	}
	var entries []OutboxEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		cursor := tx.Bucket(bucketOutbox).Cursor()
		for key, value := cursor.Seek(outboxKey(afterSeq + 1)); key != nil; key, value = cursor.Next() {
			if limit > 0 && len(entries) == limit {
				break
			}
			entry, err := decodeOutboxEntry(key, value)
			if err != nil {
				return err
			}
			entries = append(entries, entry)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading outbox after seq %d: %w", afterSeq, err)
	}
	return entries, nil
}

// Ack removes every entry with a sequence number up to and including upTo and returns how many
// it removed. Acking again, or acking below what was already removed, removes nothing, so
// duplicated acks from GM are harmless. Damaged entries are removed like any other: GM has
// acknowledged them.
func (s *Store) Ack(upTo uint64) (int, error) {
	upToKey := outboxKey(upTo)
	// A read transaction first, because a write transaction always fsyncs and duplicated
	// acks are common after reconnects.
	var anything bool
	err := s.db.View(func(tx *bolt.Tx) error {
		first, _ := tx.Bucket(bucketOutbox).Cursor().First()
		anything = first != nil && bytes.Compare(first, upToKey) <= 0
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("acknowledging outbox up to seq %d: %w", upTo, err)
	}
	if !anything {
		return 0, nil
	}
	removed := 0
	err = s.db.Update(func(tx *bolt.Tx) error {
		removed = 0
		u, err := s.readUsage(tx)
		if err != nil {
			return err
		}
		outbox := tx.Bucket(bucketOutbox)
		index := tx.Bucket(bucketOutboxStreams)
		type doomedEntry struct {
			key    []byte
			stream string
		}
		var doomed []doomedEntry
		recount := false
		cursor := outbox.Cursor()
		for key, value := cursor.First(); key != nil && bytes.Compare(key, upToKey) <= 0; key, value = cursor.Next() {
			info := inspectEntry(key, value)
			if info.damaged || !u.remove(info) {
				recount = true
			}
			// Copy: the key points into the memory map, and deleting under a live cursor
			// skips entries.
			doomed = append(doomed, doomedEntry{key: bytes.Clone(key), stream: info.stream})
		}
		if len(doomed) == 0 {
			return nil
		}
		for _, d := range doomed {
			if err := outbox.Delete(d.key); err != nil {
				return err
			}
			if d.stream != "" && bytes.Equal(index.Get([]byte(d.stream)), d.key) {
				if err := index.Delete([]byte(d.stream)); err != nil {
					return err
				}
			}
		}
		if recount {
			// A damaged entry counts as the LC's own whatever it was queued as; recounting
			// keeps the usage equal to what Open would count.
			_, err = s.recountUsage(tx)
		} else {
			err = putUsage(tx.Bucket(bucketMeta), u)
		}
		if err != nil {
			return err
		}
		removed = len(doomed)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("acknowledging outbox up to seq %d: %w", upTo, err)
	}
	return removed, nil
}

// viewUsage reads the usage in a read transaction; a damaged counter is recounted without
// being rewritten (the next Enqueue or Ack rewrites it).
func (s *Store) viewUsage(tx *bolt.Tx) usage {
	u, err := decodeUsage(tx.Bucket(bucketMeta).Get(metaOutboxUsage))
	if err != nil {
		s.logger.Error(err, "Counting outbox entries instead of reading the damaged counter")
		u, _, _ = scanOutbox(tx.Bucket(bucketOutbox))
	}
	return u
}

// OutboxLen returns the number of pending entries.
func (s *Store) OutboxLen() (int, error) {
	var count uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		count, _ = s.viewUsage(tx).total()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("counting outbox entries: %w", err)
	}
	return int(count), nil
}

// ClassStats is what one class of reports takes of the outbox.
type ClassStats struct {
	Class Class
	// Reports and Bytes are the pending entries of the class and their accounted size: key,
	// value and bbolt's per-key overhead, and the stream index entry of a coalesced report.
	Reports uint64
	Bytes   uint64
	// LimitBytes is what the class may take on its own; the worker classes share
	// WorkerSharePercent of the budget besides.
	LimitBytes uint64
	// Rejected counts the reports of the class refused with ErrOutboxFull since Open.
	Rejected uint64
}

// OutboxStats describes the outbox's use of its budget.
type OutboxStats struct {
	BudgetBytes uint64
	MaxReports  int
	// Classes holds one entry per class, in the order of Classes().
	Classes []ClassStats
	// Coalesced counts the queued reports replaced by a newer one of their stream since Open.
	Coalesced uint64
}

// Bytes returns the accounted size of all pending entries.
func (st OutboxStats) Bytes() uint64 {
	var total uint64
	for _, c := range st.Classes {
		total += c.Bytes
	}
	return total
}

// OutboxStats returns the outbox's usage, its bounds and the counters since Open.
func (s *Store) OutboxStats() (OutboxStats, error) {
	var u usage
	err := s.db.View(func(tx *bolt.Tx) error {
		u = s.viewUsage(tx)
		return nil
	})
	if err != nil {
		return OutboxStats{}, fmt.Errorf("reading outbox usage: %w", err)
	}
	limits := [numClasses]uint64{
		ClassOwn:           s.maxBytes,
		ClassWorkerEvent:   share(s.maxBytes, WorkerSharePercent),
		ClassWorkerMetrics: share(s.maxBytes, MetricsSharePercent),
	}
	stats := OutboxStats{BudgetBytes: s.maxBytes, MaxReports: s.maxOutbox, Coalesced: s.coalesced.Load()}
	for _, c := range Classes() {
		stats.Classes = append(stats.Classes, ClassStats{
			Class: c, Reports: u.count[c], Bytes: u.bytes[c], LimitBytes: limits[c], Rejected: s.rejected[c].Load(),
		})
	}
	return stats, nil
}

// LastSeq returns the highest sequence number ever handed out (0 before the first Enqueue),
// whether or not its entry has been acknowledged since. The next Enqueue returns LastSeq()+1.
func (s *Store) LastSeq() (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		seq = tx.Bucket(bucketOutbox).Sequence()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading outbox sequence: %w", err)
	}
	return seq, nil
}
