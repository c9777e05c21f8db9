package store

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// State records are small values the LC managers keep between restarts (dataset sample
// counters, model records, trigger and stage state of learning jobs). Each manager uses its
// own namespace, e.g. "dataset" or "ilstage"; keys are the manager's choice.

func validateStateAddress(namespace, key string) error {
	if namespace == "" {
		return errors.New("state namespace is empty")
	}
	if key == "" {
		return fmt.Errorf("state key in namespace %q is empty", namespace)
	}
	return nil
}

func stateName(namespace, key string) string { return namespace + "/" + key }

func decodeStateValue(namespace, key string, raw []byte) ([]byte, error) {
	kind, body, err := decodeFrame(raw)
	if err == nil && kind != recordState {
		err = fmt.Errorf("holds a %s record, want state", kind)
	}
	if err != nil {
		return nil, &CorruptError{Bucket: string(bucketState), Key: stateName(namespace, key), Reason: err.Error()}
	}
	return body, nil
}

// PutState stores value under namespace and key, replacing what was there.
func (s *Store) PutState(namespace, key string, value []byte) error {
	if err := validateStateAddress(namespace, key); err != nil {
		return fmt.Errorf("putting state: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketState).Put(encodeTuple(namespace, key), encodeFrame(recordState, value))
	})
	if err != nil {
		return fmt.Errorf("putting state %s: %w", stateName(namespace, key), err)
	}
	return nil
}

// GetState returns the value stored under namespace and key. A value stored as nil or empty
// reads back as a non-nil empty slice with found true.
func (s *Store) GetState(namespace, key string) ([]byte, bool, error) {
	return s.getValue(bucketState, "state", namespace, key)
}

// getValue reads namespace/key from bucket (a state or blob bucket; a missing bucket holds
// nothing); what names the kind of value in errors.
func (s *Store) getValue(bucket []byte, what, namespace, key string) ([]byte, bool, error) {
	if err := validateStateAddress(namespace, key); err != nil {
		return nil, false, fmt.Errorf("getting %s: %w", what, err)
	}
	var (
		value []byte
		found bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		raw := b.Get(encodeTuple(namespace, key))
		if raw == nil {
			return nil
		}
		decoded, err := decodeStateValue(namespace, key, raw)
		if err != nil {
			return err
		}
		value, found = decoded, true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("getting %s %s: %w", what, stateName(namespace, key), err)
	}
	return value, found, nil
}

// DeleteState removes the record; deleting a missing record is not an error, so managers can
// clean up idempotently.
func (s *Store) DeleteState(namespace, key string) error {
	if err := validateStateAddress(namespace, key); err != nil {
		return fmt.Errorf("deleting state: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketState).Delete(encodeTuple(namespace, key))
	})
	if err != nil {
		return fmt.Errorf("deleting state %s: %w", stateName(namespace, key), err)
	}
	return nil
}

// ListState returns every record of namespace, keyed by record key. A damaged record fails
// the whole list for the same reason as ListResources.
func (s *Store) ListState(namespace string) (map[string][]byte, error) {
	if namespace == "" {
		return nil, errors.New("listing state: state namespace is empty")
	}
	prefix := appendTuplePart(nil, namespace)
	records := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		cursor := tx.Bucket(bucketState).Cursor()
		for raw, value := cursor.Seek(prefix); raw != nil && bytes.HasPrefix(raw, prefix); raw, value = cursor.Next() {
			parts, err := decodeTuple(raw, 2)
			if err != nil {
				return &CorruptError{Bucket: string(bucketState), Key: fmt.Sprintf("%x", raw), Reason: "undecodable key: " + err.Error()}
			}
			decoded, err := decodeStateValue(parts[0], parts[1], value)
			if err != nil {
				return err
			}
			records[parts[1]] = decoded
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing state namespace %q: %w", namespace, err)
	}
	return records, nil
}
