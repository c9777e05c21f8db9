package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrOutboxFull is wrapped by Enqueue when MaxOutbox reports are pending; the returned error
// says how many. The caller decides what to drop: the store never discards a report itself.
var ErrOutboxFull = errors.New("outbox is full")

// OutboxEntry is one report waiting for GM's acknowledgement.
type OutboxEntry struct {
	// Seq numbers the entry. Sequence numbers start at 1, strictly increase in enqueue order and
	// are never reused, even across restarts and after Ack removed the entries.
	Seq        uint64
	Payload    []byte
	EnqueuedAt time.Time
}

// Outbox keys are big-endian sequence numbers, so cursor order is enqueue order.
func outboxKey(seq uint64) []byte { return encodeUint64(seq) }

func decodeOutboxEntry(rawKey, raw []byte) (OutboxEntry, error) {
	if len(rawKey) != 8 {
		return OutboxEntry{}, &CorruptError{Bucket: string(bucketOutbox), Key: fmt.Sprintf("%x", rawKey), Reason: fmt.Sprintf("key is %d bytes, want 8", len(rawKey))}
	}
	seq := binary.BigEndian.Uint64(rawKey)
	kind, body, err := decodeFrame(raw)
	switch {
	case err != nil:
	case kind != recordOutbox:
		err = fmt.Errorf("holds a %s record, want outbox", kind)
	case len(body) < 8:
		err = fmt.Errorf("body is %d bytes, too short for a timestamp", len(body))
	}
	if err != nil {
		return OutboxEntry{}, &CorruptError{Bucket: string(bucketOutbox), Key: strconv.FormatUint(seq, 10), Reason: err.Error()}
	}
	return OutboxEntry{
		Seq:        seq,
		Payload:    body[8:],
		EnqueuedAt: time.Unix(0, int64(binary.BigEndian.Uint64(body[:8]))),
	}, nil
}

// pendingCount reads the count kept in the meta bucket. If it is damaged it is recounted from
// the entries and rewritten, so a damaged counter never blocks reporting.
func (s *Store) pendingCount(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	count, err := decodeMetaUint64(metaOutboxPending, meta.Get(metaOutboxPending))
	if err == nil {
		return count, nil
	}
	s.logger.Error(err, "Recounting outbox entries")
	count = uint64(tx.Bucket(bucketOutbox).Stats().KeyN)
	if err := putMetaUint64(meta, metaOutboxPending, count); err != nil {
		return 0, err
	}
	return count, nil
}

// Enqueue appends a report and returns its sequence number. It returns only after the entry is
// committed: bbolt fsyncs the file on every commit, so a report accepted here survives a crash
// of the LC or of the node.
func (s *Store) Enqueue(payload []byte) (uint64, error) {
	if len(payload) == 0 {
		return 0, errors.New("enqueueing report: payload is empty")
	}
	var seq uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		count, err := s.pendingCount(tx)
		if err != nil {
			return err
		}
		if count >= uint64(s.maxOutbox) {
			return fmt.Errorf("%w: %d reports pending (limit %d)", ErrOutboxFull, count, s.maxOutbox)
		}
		outbox := tx.Bucket(bucketOutbox)
		// The bucket's sequence is part of this transaction: if the commit fails it rolls
		// back with the entry, so numbers stay gap-free and are never handed out twice.
		next, err := outbox.NextSequence()
		if err != nil {
			return fmt.Errorf("allocating sequence number: %w", err)
		}
		stamp := encodeUint64(uint64(s.now().UnixNano()))
		if err := outbox.Put(outboxKey(next), encodeFrame(recordOutbox, stamp, payload)); err != nil {
			return err
		}
		if err := putMetaUint64(tx.Bucket(bucketMeta), metaOutboxPending, count+1); err != nil {
			return err
		}
		seq = next
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("enqueueing report: %w", err)
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
		outbox := tx.Bucket(bucketOutbox)
		var doomed [][]byte
		cursor := outbox.Cursor()
		for key, _ := cursor.First(); key != nil && bytes.Compare(key, upToKey) <= 0; key, _ = cursor.Next() {
			// Copy: the key points into the memory map, and deleting under a live cursor
			// skips entries.
			doomed = append(doomed, bytes.Clone(key))
		}
		if len(doomed) == 0 {
			return nil
		}
		count, err := s.pendingCount(tx)
		if err != nil {
			return err
		}
		for _, key := range doomed {
			if err := outbox.Delete(key); err != nil {
				return err
			}
		}
		remaining := uint64(0)
		if count > uint64(len(doomed)) {
			remaining = count - uint64(len(doomed))
		}
		if err := putMetaUint64(tx.Bucket(bucketMeta), metaOutboxPending, remaining); err != nil {
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

// OutboxLen returns the number of pending entries.
func (s *Store) OutboxLen() (int, error) {
	var count uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		count, err = decodeMetaUint64(metaOutboxPending, tx.Bucket(bucketMeta).Get(metaOutboxPending))
		if err != nil {
			// Counting needs no write, so a damaged counter need not fail the read; the next
			// Enqueue or Ack rewrites it.
			s.logger.Error(err, "Counting outbox entries instead of reading the damaged counter")
			count = uint64(tx.Bucket(bucketOutbox).Stats().KeyN)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("counting outbox entries: %w", err)
	}
	return int(count), nil
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
