package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"k8s.io/klog/v2"
)

const (
	// DefaultMaxOutbox bounds the number of pending reports. The byte budget (MaxOutboxBytes) is
	// what keeps the file small; this bound keeps Open's scan of the outbox and the page-in of
	// the GM client's backlog short when the reports are tiny.
	DefaultMaxOutbox = 100000
	// DefaultMaxOutboxBytes is the default byte budget of the outbox. The outbox only has to
	// cover the time a node is cut off from GM: the LC's stage reports are about a kilobyte,
	// dataset counts far less, and a worker's periodic metrics are coalesced to one entry per
	// worker, so 64 MiB holds tens of thousands of stage reports (weeks offline at any realistic
	// round rate) and sixteen reports of the largest size a frame may carry (4 MiB). It stays
	// well below 1% of the 8–32 GB flash of a typical edge board (Jetson, Raspberry Pi, an
	// industrial gateway) that the OS, the images, datasets and models share, and bbolt's file
	// grows in steps of 16 MiB (its AllocSize) once past that size, so the file itself ends up
	// within a step or two of the budget.
	DefaultMaxOutboxBytes int64 = 64 << 20
	// MinOutboxBytes is the smallest byte budget accepted: less could not hold one report of
	// ordinary size next to the worker share.
	MinOutboxBytes int64 = 1 << 20
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

	// bucketOutboxStreams maps the stream of each queued worker-metrics report to its sequence
	// number, so a newer report of the stream can replace it (see EnqueueOptions.Stream).
	bucketOutboxStreams = []byte("outbox.streams")

	metaSchema = []byte("schema")
	// metaOutboxPending is the pending count written by binaries that had no byte budget. It is
	// replaced by metaOutboxUsage and removed at Open.
	metaOutboxPending  = []byte("outbox.pending")
	metaOutboxUsage    = []byte("outbox.usage")
	allBuckets         = [][]byte{bucketMeta, bucketResources, bucketState, bucketOutbox, bucketOutboxStreams}
	errNoSchemaVersion = errors.New("store has data but no schema version")
)

// ErrLocked is wrapped by Open when another process holds the store file.
var ErrLocked = errors.New("store file is locked by another process")

// Options tunes a Store. The zero value selects the defaults.
type Options struct {
	// MaxOutbox is the number of pending reports at which Enqueue fails with ErrOutboxFull.
	// Zero or negative selects DefaultMaxOutbox. Worker reports may take only their share of it
	// (see WorkerSharePercent), like of the byte budget.
	MaxOutbox int
	// MaxOutboxBytes is the byte budget of the outbox: the accounted size of all pending
	// entries (see OutboxStats) never exceeds it. Zero selects DefaultMaxOutboxBytes; a value
	// below MinOutboxBytes is an error.
	MaxOutboxBytes int64
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
	maxBytes  uint64
	now       func() time.Time
	logger    klog.Logger

	// Counters of this process's lifetime, for metrics.
	rejected  [numClasses]atomic.Uint64
	coalesced atomic.Uint64

	// quarantined is where Open moved a damaged file aside, if it did.
	quarantined string
}

// Quarantined returns the path a damaged store file was moved to when Open found it unreadable
// and started empty, or "" if the file opened normally.
func (s *Store) Quarantined() string { return s.quarantined }

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
	switch {
	case opts.MaxOutboxBytes == 0:
		opts.MaxOutboxBytes = DefaultMaxOutboxBytes
	case opts.MaxOutboxBytes < MinOutboxBytes:
		return nil, fmt.Errorf("opening local store %s: outbox budget of %d bytes is below the minimum of %d bytes (1 MiB)", path, opts.MaxOutboxBytes, MinOutboxBytes)
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
	boltOpts := &bolt.Options{Timeout: opts.Timeout}
	db, err := openBolt(path, boltOpts)
	quarantined := ""
	if errors.Is(err, errDamagedFile) {
		// A file bbolt cannot read is not repaired by restarting: refusing to open it would be a
		// crash loop that takes the node's inference and learning down with it. It is kept aside
		// for inspection and the LC starts empty: GM resends the node's resources in its
		// snapshot; what was queued in the damaged file is lost, and the error says so.
		aside, qErr := quarantine(path, opts.Now())
		if qErr != nil {
			return nil, fmt.Errorf("opening local store %s: %w; %w", path, err, qErr)
		}
		opts.Logger.Error(err, "Local store file is damaged beyond repair; moved it aside and starting with an empty store (GM resends this node's resources; reports queued in the damaged file are lost)",
			"store", path, "movedTo", aside)
		quarantined = aside
		db, err = openBolt(path, boltOpts)
	}
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
		maxBytes:  uint64(opts.MaxOutboxBytes),
		now:       opts.Now,
		logger:    opts.Logger.WithValues("store", path),

		quarantined: quarantined,
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

// reconcileOutbox makes the sequence, the usage (counts and bytes per class) and the stream
// index agree with the entries. All of them are written in the same transaction as the entries,
// so they only disagree after damage, or when a binary without a byte budget wrote the store
// last; repairing here keeps Enqueue's bounds exact and guarantees a sequence number is never
// handed out twice even if the sequence itself was damaged.
func (s *Store) reconcileOutbox(tx *bolt.Tx) error {
	outbox := tx.Bucket(bucketOutbox)
	meta := tx.Bucket(bucketMeta)
	counted, streams, maxSeq := scanOutbox(outbox)
	if seq := outbox.Sequence(); seq < maxSeq {
		s.logger.Error(nil, "Outbox sequence is behind its entries; advancing it", "sequence", seq, "highestEntry", maxSeq)
		if err := outbox.SetSequence(maxSeq); err != nil {
			return fmt.Errorf("repairing outbox sequence: %w", err)
		}
	}
	if err := s.reconcileStreams(tx.Bucket(bucketOutboxStreams), streams); err != nil {
		return err
	}
	if meta.Get(metaOutboxPending) != nil {
		// Written by a binary without a byte budget; the usage below replaces it.
		if err := meta.Delete(metaOutboxPending); err != nil {
			return fmt.Errorf("removing the old outbox pending count: %w", err)
		}
	}
	raw := meta.Get(metaOutboxUsage)
	stored, err := decodeUsage(raw)
	if err == nil && stored == counted {
		return nil
	}
	if raw != nil {
		s.logger.Error(err, "Outbox usage disagrees with its entries; rebuilding it", "stored", stored.String(), "counted", counted.String())
	}
	return putUsage(meta, counted)
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
