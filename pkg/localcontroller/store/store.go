package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"k8s.io/klog/v2"
)

const (
	// DefaultMaxOutbox bounds the outbox so a node that stays offline for a long time cannot
	// fill its disk with reports; at a few hundred bytes per report this is tens of megabytes.
	DefaultMaxOutbox = 100000
	// DefaultTimeout is how long Open waits for the file lock. Long enough to ride out the
	// previous LC process exiting during a rolling update, short enough to fail visibly when
	// two LCs are pointed at one data directory.
	DefaultTimeout = 5 * time.Second
)

// schemaVersion is written into the meta bucket. A binary refuses to open a store written by
// a newer schema rather than misreading it.
const schemaVersion uint64 = 1

var (
	bucketMeta      = []byte("meta")
	bucketResources = []byte("resources")
	bucketState     = []byte("state")
	bucketOutbox    = []byte("outbox")

	metaSchema         = []byte("schema")
	metaOutboxPending  = []byte("outbox.pending")
	allBuckets         = [][]byte{bucketMeta, bucketResources, bucketState, bucketOutbox}
	errNoSchemaVersion = errors.New("store has data but no schema version")
)

// ErrLocked is wrapped by Open when another process holds the store file.
var ErrLocked = errors.New("store file is locked by another process")

// Options tunes a Store. The zero value selects the defaults.
type Options struct {
	// MaxOutbox is the number of pending reports at which Enqueue fails with ErrOutboxFull.
	// Zero or negative selects DefaultMaxOutbox.
	MaxOutbox int
	// Timeout is how long Open waits for the file lock. Zero or negative selects
	// DefaultTimeout; waiting forever is not offered because a hung LC is worse than a failed one.
	Timeout time.Duration
	// Now stamps outbox entries; nil means time.Now. A seam for tests.
	Now func() time.Time
	// Logger receives reports of repairs (damaged records replaced, counters rebuilt). A logger
	// without a sink selects klog.Background().
	Logger klog.Logger
}

// Store is the LC's local store. It is safe for concurrent use: bbolt serialises writers and
// lets readers run alongside them.
type Store struct {
	db        *bolt.DB
	path      string
	maxOutbox int
	now       func() time.Time
	logger    klog.Logger
}

// Open opens or creates the store file at path, creating its parent directory (0700) and the
// file (0600) when missing: the resources GM sends may carry credentials. It checks the schema
// and repairs the outbox bookkeeping if a previous process left it inconsistent.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("opening local store: path is empty")
	}
	if opts.MaxOutbox <= 0 {
		opts.MaxOutbox = DefaultMaxOutbox
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = klog.Background()
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("opening local store %s: creating its directory: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("opening local store %s: %w (waited %s): %w", path, ErrLocked, opts.Timeout, err)
		}
		return nil, fmt.Errorf("opening local store %s: %w", path, err)
	}
	s := &Store{
		db:        db,
		path:      path,
		maxOutbox: opts.MaxOutbox,
		now:       opts.Now,
		logger:    opts.Logger.WithValues("store", path),
	}
	if err := s.restrictPermissions(); err != nil {
		return nil, errors.Join(err, s.closeAfterFailedOpen())
	}
	if err := db.Update(s.initialize); err != nil {
		return nil, errors.Join(fmt.Errorf("opening local store %s: %w", path, err), s.closeAfterFailedOpen())
	}
	return s, nil
}

// restrictPermissions tightens a pre-existing file (bbolt only applies the mode when it
// creates the file) so stored credentials are not readable by other users.
func (s *Store) restrictPermissions() error {
	info, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("opening local store %s: %w", s.path, err)
	}
	if info.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(s.path, 0o600); err != nil {
		return fmt.Errorf("opening local store %s: restricting permissions from %s to 0600: %w", s.path, info.Mode().Perm(), err)
	}
	return nil
}

func (s *Store) closeAfterFailedOpen() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing local store %s after failed open: %w", s.path, err)
	}
	return nil
}

// initialize creates the buckets, checks the schema version and reconciles the outbox
// bookkeeping with its entries.
func (s *Store) initialize(tx *bolt.Tx) error {
	hadMeta := tx.Bucket(bucketMeta) != nil
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("creating bucket %q: %w", name, err)
		}
	}
	if err := checkSchema(tx.Bucket(bucketMeta), hadMeta); err != nil {
		return err
	}
	return s.reconcileOutbox(tx)
}

func checkSchema(meta *bolt.Bucket, hadMeta bool) error {
	raw := meta.Get(metaSchema)
	if raw == nil {
		if hadMeta {
			return errNoSchemaVersion
		}
		return putMetaUint64(meta, metaSchema, schemaVersion)
	}
	version, err := decodeMetaUint64(metaSchema, raw)
	if err != nil {
		return err
	}
	if version > schemaVersion {
		return fmt.Errorf("store schema version %d is newer than this binary supports (%d)", version, schemaVersion)
	}
	return nil
}

// reconcileOutbox makes the stored pending count and the sequence agree with the entries.
// Both are written in the same transaction as the entries, so they only disagree after
// damage; repairing here keeps Enqueue's bound exact and guarantees a sequence number is never
// handed out twice even if the sequence itself was damaged.
func (s *Store) reconcileOutbox(tx *bolt.Tx) error {
	outbox := tx.Bucket(bucketOutbox)
	meta := tx.Bucket(bucketMeta)
	var count, maxSeq uint64
	cursor := outbox.Cursor()
	for key, _ := cursor.First(); key != nil; key, _ = cursor.Next() {
		count++
		if len(key) == 8 {
			maxSeq = max(maxSeq, binary.BigEndian.Uint64(key))
		}
	}
	if seq := outbox.Sequence(); seq < maxSeq {
		s.logger.Error(nil, "Outbox sequence is behind its entries; advancing it", "sequence", seq, "highestEntry", maxSeq)
		if err := outbox.SetSequence(maxSeq); err != nil {
			return fmt.Errorf("repairing outbox sequence: %w", err)
		}
	}
	stored, err := decodeMetaUint64(metaOutboxPending, meta.Get(metaOutboxPending))
	if err == nil && stored == count {
		return nil
	}
	if meta.Get(metaOutboxPending) != nil {
		s.logger.Error(err, "Outbox pending count disagrees with its entries; rebuilding it", "stored", stored, "counted", count)
	}
	return putMetaUint64(meta, metaOutboxPending, count)
}

func putMetaUint64(meta *bolt.Bucket, key []byte, value uint64) error {
	if err := meta.Put(key, encodeFrame(recordMeta, encodeUint64(value))); err != nil {
		return fmt.Errorf("writing meta %q: %w", key, err)
	}
	return nil
}

// decodeMetaUint64 reads a counter; a missing value reads as zero.
func decodeMetaUint64(key, raw []byte) (uint64, error) {
	if raw == nil {
		return 0, nil
	}
	kind, body, err := decodeFrame(raw)
	if err == nil && kind != recordMeta {
		err = fmt.Errorf("holds a %s record, want meta", kind)
	}
	if err == nil && len(body) != 8 {
		err = fmt.Errorf("body is %d bytes, want 8", len(body))
	}
	if err != nil {
		return 0, &CorruptError{Bucket: string(bucketMeta), Key: string(key), Reason: err.Error()}
	}
	return binary.BigEndian.Uint64(body), nil
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. Calls after Close fail.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing local store %s: %w", s.path, err)
	}
	return nil
}
