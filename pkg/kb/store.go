package kb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Names of the index files the knowledge base serves.
const (
	// OpaqueIndexFile holds the last index of unknown format (upstream's joblib pickle), as
	// upstream names it.
	OpaqueIndexFile = "index.pkl"
	// JSONIndexFile holds the last JSON index (IndexFormat).
	JSONIndexFile = "index.json"
)

// ErrBadIndex wraps every reason an uploaded JSON index is refused.
var ErrBadIndex = errors.New("malformed index")

var (
	bucketMeta   = []byte("meta")
	bucketTasks  = []byte("tasks")
	bucketFiles  = []byte("files")
	keyIndexJSON = []byte("index.json")
	keyIndexFile = []byte("index.file")
)

// FileRecord is what the store remembers of a file.
type FileRecord struct {
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Updated time.Time `json:"updated"`
}

// TaskRecord is a task's status as set by update/status, kept for tasks of opaque indexes too.
type TaskRecord struct {
	Status  int       `json:"status"`
	Updated time.Time `json:"updated"`
}

// Store is the knowledge base's state: metadata in a bbolt file (kb.db in the data directory),
// file contents in a FileStore. Safe for concurrent use.
type Store struct {
	db    *bolt.DB
	files FileStore
	now   func() time.Time

	mu sync.RWMutex
	// index is the last JSON index, nil before the first one.
	index *Index
	// indexFile is the file name of the last index (JSON or opaque), "" before the first.
	indexFile string
}

// OpenStore opens (creating it if needed) the metadata database in dir.
func OpenStore(dir string, files FileStore) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "kb.db"), 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening the knowledge base database: %w", err)
	}
	s := &Store{db: db, files: files, now: time.Now}
	var recorded []byte
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketTasks, bucketFiles} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		s.indexFile = string(meta.Get(keyIndexFile))
		if raw := meta.Get(keyIndexJSON); raw != nil {
			index, err := ParseIndex(raw)
			if err != nil {
				return fmt.Errorf("the stored index: %w", err)
			}
			s.index = index
			recorded = append([]byte(nil), raw...)
		}
		return nil
	})
	if err == nil && recorded != nil {
		err = s.syncIndexFile(context.Background(), recorded)
	}
	if err != nil {
		_ = db.Close() // the open error is the one to report
		return nil, fmt.Errorf("loading the knowledge base: %w", err)
	}
	return s, nil
}

// syncIndexFile makes JSONIndexFile hold recorded, the index in the database: a crash between
// writing the file and recording it in storeIndexLocked leaves them different, and the database
// is what queries answer from.
func (s *Store) syncIndexFile(ctx context.Context, recorded []byte) error {
	reader, _, err := s.files.Open(ctx, JSONIndexFile)
	if err == nil {
		current, readErr := io.ReadAll(io.LimitReader(reader, int64(len(recorded))+1))
		_ = reader.Close() // read-only
		if readErr == nil && bytes.Equal(current, recorded) {
			return nil
		}
	} else if !errors.Is(err, ErrFileNotFound) {
		return fmt.Errorf("reading %s: %w", JSONIndexFile, err)
	}
	digest := sha256.Sum256(recorded)
	if err := s.PutFile(ctx, JSONIndexFile, bytes.NewReader(recorded), int64(len(recorded)), hex.EncodeToString(digest[:])); err != nil {
		return fmt.Errorf("rewriting %s from the database: %w", JSONIndexFile, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Files returns the file store.
func (s *Store) Files() FileStore { return s.files }

// PutFile stores a file and records its size and digest.
func (s *Store) PutFile(ctx context.Context, name string, content io.Reader, size int64, sha256Hex string) error {
	if err := CheckFileName(name); err != nil {
		return err
	}
	if err := s.files.Put(ctx, name, content, size); err != nil {
		return err
	}
	record, err := json.Marshal(FileRecord{Size: size, SHA256: sha256Hex, Updated: s.now().UTC()})
	if err != nil {
		return fmt.Errorf("recording %s: %w", name, err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketFiles).Put([]byte(name), record) }); err != nil {
		return fmt.Errorf("recording %s: %w", name, err)
	}
	return nil
}

// File returns the record of a stored file.
func (s *Store) File(name string) (FileRecord, bool, error) {
	var record FileRecord
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketFiles).Get([]byte(name))
		if raw == nil {
			return nil
		}
		found = true
		return json.Unmarshal(raw, &record)
	})
	return record, found, err
}

// IsJSONIndex tells a JSON index (what Go workers upload) from anything else (upstream's joblib
// pickle, stored opaquely).
func IsJSONIndex(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// UpdateIndex stores a new index and returns the name of the file that serves it. A JSON index
// is validated (errors wrap ErrBadIndex), keeps the statuses update/status gave its tasks, and
// becomes what Query answers from; anything else is stored as OpaqueIndexFile, unread.
func (s *Store) UpdateIndex(ctx context.Context, data []byte, sha256Hex string) (string, error) {
	if !IsJSONIndex(data) {
		if err := s.PutFile(ctx, OpaqueIndexFile, bytes.NewReader(data), int64(len(data)), sha256Hex); err != nil {
			return "", err
		}
		return OpaqueIndexFile, s.setIndex(nil, OpaqueIndexFile)
	}
	index, err := ParseIndex(data)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadIndex, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	statuses, err := s.taskStatuses()
	if err != nil {
		return "", err
	}
	for i := range index.Tasks {
		if record, ok := statuses[index.Tasks[i].ID]; ok && index.Tasks[i].Status == 0 {
			index.Tasks[i].Status = record.Status
		}
	}
	return JSONIndexFile, s.storeIndexLocked(ctx, index)
}

// storeIndexLocked writes the JSON index file, then the metadata; s.mu is held.
func (s *Store) storeIndexLocked(ctx context.Context, index *Index) error {
	encoded, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("encoding the index: %w", err)
	}
	if err := s.PutFile(ctx, JSONIndexFile, bytes.NewReader(encoded), int64(len(encoded)), ""); err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyIndexJSON, encoded); err != nil {
			return err
		}
		return meta.Put(keyIndexFile, []byte(JSONIndexFile))
	})
	if err != nil {
		return fmt.Errorf("recording the index: %w", err)
	}
	s.index, s.indexFile = index, JSONIndexFile
	return nil
}

func (s *Store) setIndex(index *Index, file string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if index == nil {
			// An opaque index supersedes the JSON one: queries must not answer from a stale index.
			if err := meta.Delete(keyIndexJSON); err != nil {
				return err
			}
		}
		return meta.Put(keyIndexFile, []byte(file))
	})
	if err != nil {
		return fmt.Errorf("recording the index: %w", err)
	}
	s.index, s.indexFile = index, file
	return nil
}

func (s *Store) taskStatuses() (map[string]TaskRecord, error) {
	statuses := map[string]TaskRecord{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
			var record TaskRecord
			if err := json.Unmarshal(v, &record); err != nil {
				return fmt.Errorf("task %q: %w", k, err)
			}
			statuses[string(k)] = record
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading task statuses: %w", err)
	}
	return statuses, nil
}

// UpdateStatus sets the status of the named tasks (upstream: after deployment) and returns the
// current index file name ("" before any index).
func (s *Store) UpdateStatus(ctx context.Context, tasks []string, status int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	record, err := json.Marshal(TaskRecord{Status: status, Updated: s.now().UTC()})
	if err != nil {
		return "", fmt.Errorf("encoding the task status: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		bucket := tx.Bucket(bucketTasks)
		for _, task := range tasks {
			if err := bucket.Put([]byte(task), record); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("recording task statuses: %w", err)
	}
	if s.index == nil {
		return s.indexFile, nil
	}
	changed := false
	updated := *s.index
	updated.Tasks = append([]Task(nil), s.index.Tasks...)
	for _, name := range tasks {
		for i := range updated.Tasks {
			if updated.Tasks[i].ID == name && updated.Tasks[i].Status != status {
				updated.Tasks[i].Status, changed = status, true
			}
		}
	}
	if changed {
		if err := s.storeIndexLocked(ctx, &updated); err != nil {
			return "", err
		}
	}
	return s.indexFile, nil
}

// TaskStatus returns the recorded status of a task.
func (s *Store) TaskStatus(task string) (TaskRecord, bool, error) {
	statuses, err := s.taskStatuses()
	if err != nil {
		return TaskRecord{}, false, err
	}
	record, ok := statuses[task]
	return record, ok, nil
}

// Index returns the current JSON index (nil before any) and the current index file name. The
// index is shared: callers must not modify it.
func (s *Store) Index() (*Index, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index, s.indexFile
}
