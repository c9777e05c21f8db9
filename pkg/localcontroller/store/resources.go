package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ResourceKey names one resource bound to this node.
type ResourceKey struct {
	// Kind is the lowercase kind, as upstream's channel spells it ("dataset", "model",
	// "incrementallearningjob", ...).
	Kind      string
	Namespace string
	Name      string
}

// String returns kind/namespace/name, the form used in logs and errors.
func (k ResourceKey) String() string {
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// validate rejects keys the LC can never legitimately receive. A capitalised kind is refused
// rather than lowered: it means a caller skipped upstream's lowercasing and would otherwise
// store the same resource under two keys.
func (k ResourceKey) validate() error {
	switch {
	case k.Kind == "":
		return fmt.Errorf("resource key %q has an empty kind", k)
	case k.Kind != strings.ToLower(k.Kind):
		return fmt.Errorf("resource key %q has kind %q, which is not lowercase", k, k.Kind)
	case k.Name == "":
		return fmt.Errorf("resource key %q has an empty name", k)
	}
	return nil
}

func (k ResourceKey) encode() []byte { return encodeTuple(k.Kind, k.Namespace, k.Name) }

func decodeResourceKey(raw []byte) (ResourceKey, error) {
	parts, err := decodeTuple(raw, 3)
	if err != nil {
		return ResourceKey{}, &CorruptError{Bucket: string(bucketResources), Key: fmt.Sprintf("%x", raw), Reason: "undecodable key: " + err.Error()}
	}
	return ResourceKey{Kind: parts[0], Namespace: parts[1], Name: parts[2]}, nil
}

// Resource is one object as GM sent it.
type Resource struct {
	Key ResourceKey
	// Version orders the states of the resource (the object's resourceVersion as GM sends it).
	Version uint64
	// Object is the JSON document from GM. The store does not parse it.
	Object []byte
}

// storedResource is a decoded value of the resources bucket: a live object or a tombstone.
type storedResource struct {
	version   uint64
	tombstone bool
	object    []byte
}

func encodeResourceValue(version uint64, object []byte) []byte {
	return encodeFrame(recordResource, encodeUint64(version), object)
}

func encodeTombstoneValue(version uint64) []byte {
	return encodeFrame(recordTombstone, encodeUint64(version))
}

func decodeResourceValue(key ResourceKey, raw []byte) (storedResource, error) {
	kind, body, err := decodeFrame(raw)
	if err == nil {
		switch {
		case kind != recordResource && kind != recordTombstone:
			err = fmt.Errorf("holds a %s record, want resource or tombstone", kind)
		case len(body) < 8:
			err = fmt.Errorf("%s body is %d bytes, too short for a version", kind, len(body))
		case kind == recordTombstone && len(body) != 8:
			err = fmt.Errorf("tombstone body is %d bytes, want 8", len(body))
		}
	}
	if err != nil {
		return storedResource{}, &CorruptError{Bucket: string(bucketResources), Key: key.String(), Reason: err.Error()}
	}
	return storedResource{
		version:   binary.BigEndian.Uint64(body[:8]),
		tombstone: kind == recordTombstone,
		object:    body[8:],
	}, nil
}

// currentVersion returns the version stored under key (live or tombstone) and whether there is
// one. A damaged record counts as absent so that the authoritative write from GM replaces it;
// otherwise one damaged value would block that resource forever. The replacement is logged.
func (s *Store) currentVersion(bucket *bolt.Bucket, key ResourceKey, encoded []byte) (uint64, bool, bool) {
	raw := bucket.Get(encoded)
	if raw == nil {
		return 0, false, false
	}
	current, err := decodeResourceValue(key, raw)
	if err != nil {
		s.logger.Error(err, "Replacing damaged resource record", "resource", key.String())
		return 0, false, false
	}
	return current.version, current.tombstone, true
}

// PutResource stores r unless the stored resource or tombstone already has a version greater
// than or equal to r.Version, and reports whether it wrote anything. Equal versions are a no-op
// so that a frame replayed after a reconnect changes nothing.
func (s *Store) PutResource(r Resource) (bool, error) {
	if err := r.Key.validate(); err != nil {
		return false, fmt.Errorf("putting resource: %w", err)
	}
	encoded := r.Key.encode()
	// A replayed frame (every frame of the snapshot GM sends on each reconnect) changes nothing:
	// decided in a read transaction, it costs no commit and no fsync. On an edge node's flash a
	// reconnect then costs reads, not one synced write per resource. The write transaction
	// checks again: another writer may have come between.
	var unchanged bool
	if err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketResources).Get(encoded)
		if raw == nil {
			return nil
		}
		// A damaged record is left to the write transaction, which replaces it and logs that.
		current, err := decodeResourceValue(r.Key, raw)
		unchanged = err == nil && current.version >= r.Version
		return nil
	}); err != nil {
		return false, fmt.Errorf("putting resource %s version %d: %w", r.Key, r.Version, err)
	}
	if unchanged {
		return false, nil
	}
	changed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		changed = false
		bucket := tx.Bucket(bucketResources)
		if version, _, found := s.currentVersion(bucket, r.Key, encoded); found && version >= r.Version {
			return nil
		}
		if err := bucket.Put(encoded, encodeResourceValue(r.Version, r.Object)); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("putting resource %s version %d: %w", r.Key, r.Version, err)
	}
	return changed, nil
}

// DeleteResource removes the resource and leaves a tombstone carrying version, so an insert
// with a version up to it that arrives later (a stale or replayed frame) is ignored. A delete
// older than the stored live version is itself stale and ignored. changed reports whether a
// live resource was removed; the tombstone is recorded even when none was stored, because the
// insert it guards against may still be in flight.
func (s *Store) DeleteResource(key ResourceKey, version uint64) (bool, error) {
	if err := key.validate(); err != nil {
		return false, fmt.Errorf("deleting resource: %w", err)
	}
	encoded := key.encode()
	changed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		changed = false
		bucket := tx.Bucket(bucketResources)
		current, tombstone, found := s.currentVersion(bucket, key, encoded)
		if found && (current > version || (tombstone && current == version)) {
			return nil
		}
		if err := bucket.Put(encoded, encodeTombstoneValue(version)); err != nil {
			return err
		}
		changed = found && !tombstone
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("deleting resource %s version %d: %w", key, version, err)
	}
	return changed, nil
}

// GetResource returns the live resource stored under key; a tombstone reads as not found.
func (s *Store) GetResource(key ResourceKey) (Resource, bool, error) {
	if err := key.validate(); err != nil {
		return Resource{}, false, fmt.Errorf("getting resource: %w", err)
	}
	var (
		resource Resource
		found    bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketResources).Get(key.encode())
		if raw == nil {
			return nil
		}
		stored, err := decodeResourceValue(key, raw)
		if err != nil {
			return err
		}
		if stored.tombstone {
			return nil
		}
		resource = Resource{Key: key, Version: stored.version, Object: stored.object}
		found = true
		return nil
	})
	if err != nil {
		return Resource{}, false, fmt.Errorf("getting resource %s: %w", key, err)
	}
	return resource, found, nil
}

// ListResources returns the live resources of kind ("" for all kinds), sorted by kind, then
// namespace, then name (byte order). A damaged record fails the whole list: handing the
// managers a partial view would make them stop work for resources that still exist.
func (s *Store) ListResources(kind string) ([]Resource, error) {
	var prefix []byte
	if kind != "" {
		prefix = appendTuplePart(nil, kind)
	}
	var resources []Resource
	err := s.db.View(func(tx *bolt.Tx) error {
		cursor := tx.Bucket(bucketResources).Cursor()
		for raw, value := cursor.Seek(prefix); raw != nil && bytes.HasPrefix(raw, prefix); raw, value = cursor.Next() {
			key, err := decodeResourceKey(raw)
			if err != nil {
				return err
			}
			stored, err := decodeResourceValue(key, value)
			if err != nil {
				return err
			}
			if stored.tombstone {
				continue
			}
			resources = append(resources, Resource{Key: key, Version: stored.version, Object: stored.object})
		}
		return nil
	})
	if err != nil {
		if kind == "" {
			return nil, fmt.Errorf("listing resources: %w", err)
		}
		return nil, fmt.Errorf("listing resources of kind %q: %w", kind, err)
	}
	return resources, nil
}

// pruneScan returns the raw keys PruneExcept deletes (records absent from present, damaged ones
// absent from it, undecodable keys, tombstones) and, of those, the resources it removes, in key
// order; logging the damaged records if log.
func (s *Store) pruneScan(bucket *bolt.Bucket, present map[ResourceKey]uint64, log bool) (doomed [][]byte, removed []ResourceKey) {
	cursor := bucket.Cursor()
	for raw, value := cursor.First(); raw != nil; raw, value = cursor.Next() {
		key, err := decodeResourceKey(raw)
		if err != nil {
			// An undecodable key cannot be in present and cannot be read; drop it.
			if log {
				s.logger.Error(err, "Dropping resource record with a damaged key")
			}
			doomed = append(doomed, bytes.Clone(raw))
			continue
		}
		stored, err := decodeResourceValue(key, value)
		_, keep := present[key]
		switch {
		case err != nil && keep:
			// The snapshot's PutResource for this key replaces the damaged value.
			continue
		case err != nil:
			if log {
				s.logger.Error(err, "Dropping damaged resource record absent from the snapshot", "resource", key.String())
			}
			removed = append(removed, key)
		case stored.tombstone:
		case keep:
			continue
		default:
			removed = append(removed, key)
		}
		// Keys point into the memory map and deleting under a live cursor skips entries, so
		// collect copies first and delete afterwards.
		doomed = append(doomed, bytes.Clone(raw))
	}
	return doomed, removed
}

// PruneExcept applies the end of a full snapshot from GM: every stored resource whose key is
// not in present is removed, and every tombstone is dropped because the snapshot supersedes the
// deletes they guarded against. It returns the removed keys in key order so the managers can
// stop what they ran for them. The versions in present are not compared: the snapshot's own
// PutResource calls carry them.
func (s *Store) PruneExcept(present map[ResourceKey]uint64) ([]ResourceKey, error) {
	// Most snapshots prune nothing (a reconnect to a GM whose state did not change): decided in a
	// read transaction, that costs no commit and no fsync.
	var nothing bool
	if err := s.db.View(func(tx *bolt.Tx) error {
		doomed, _ := s.pruneScan(tx.Bucket(bucketResources), present, false)
		nothing = len(doomed) == 0
		return nil
	}); err != nil {
		return nil, fmt.Errorf("pruning resources after snapshot of %d: %w", len(present), err)
	}
	if nothing {
		return nil, nil
	}
	var removed []ResourceKey
	err := s.db.Update(func(tx *bolt.Tx) error {
		bucket := tx.Bucket(bucketResources)
		var doomed [][]byte
		doomed, removed = s.pruneScan(bucket, present, true)
		for _, raw := range doomed {
			if err := bucket.Delete(raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pruning resources after snapshot of %d: %w", len(present), err)
	}
	return removed, nil
}
