package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Blobs are large state values (a learning job's sample pools, up to tens of MiB) kept in a
// bucket of their own. bbolt stores a value inline in its leaf page, so a large value in the
// state bucket would be rewritten, with its page, by every write of a small state record that
// shares the page; in their own bucket, writing state records never touches them. The bucket is
// created by the first write, so stores from before it open unchanged.
var bucketBlobs = []byte("blobs")

// StateWrite is one change of WriteStates: Value stored under Namespace and Key (in the blob
// bucket when Blob is set), or, with Delete, the record removed.
type StateWrite struct {
	Namespace, Key string
	Value          []byte
	Blob           bool
	Delete         bool
}

// WriteStates applies every write in one transaction: after a crash either all of them are
// stored or none. A manager that keeps a large, rarely changing part of its state as a blob uses
// it to change the blob and its small state record together.
func (s *Store) WriteStates(writes ...StateWrite) error {
	for _, w := range writes {
		if err := validateStateAddress(w.Namespace, w.Key); err != nil {
			return fmt.Errorf("writing states: %w", err)
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, w := range writes {
			bucket := tx.Bucket(bucketState)
			if w.Blob {
				var err error
				if bucket, err = tx.CreateBucketIfNotExists(bucketBlobs); err != nil {
					return fmt.Errorf("creating bucket %q: %w", bucketBlobs, err)
				}
			}
			var err error
			if w.Delete {
				err = bucket.Delete(encodeTuple(w.Namespace, w.Key))
			} else {
				err = bucket.Put(encodeTuple(w.Namespace, w.Key), encodeFrame(recordState, w.Value))
			}
			if err != nil {
				return fmt.Errorf("state %s: %w", stateName(w.Namespace, w.Key), err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing %d states: %w", len(writes), err)
	}
	return nil
}

// PutBlob stores value as the blob namespace/key, replacing what was there.
func (s *Store) PutBlob(namespace, key string, value []byte) error {
	return s.WriteStates(StateWrite{Namespace: namespace, Key: key, Value: value, Blob: true})
}

// GetBlob returns the blob namespace/key, and whether there is one.
func (s *Store) GetBlob(namespace, key string) ([]byte, bool, error) {
	return s.getValue(bucketBlobs, "blob", namespace, key)
}
