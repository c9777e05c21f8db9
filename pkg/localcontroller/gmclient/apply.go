package gmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Handler is the LC's dispatcher. Its methods are called one at a time, in frame order, never
// concurrently (each connection has one applying goroutine, and a new connection starts only
// after the previous one's has stopped), and only after the store committed the change. They
// should return quickly: the next frame waits for them, and so does its acknowledgement. The
// context lives as long as Run's, not the connection's, so work started from it is not
// cancelled by a reconnect.
type Handler interface {
	// ResourceChanged is called after the store accepted a newer version of r.
	ResourceChanged(ctx context.Context, r store.Resource)
	// ResourceDeleted is called after a delete from GM, or a sync that pruned key, removed a
	// live resource from the store.
	ResourceDeleted(ctx context.Context, key store.ResourceKey)
}

// SnapshotObserver is implemented by a Handler that wants to know when a connection's snapshot
// has been applied: the store then holds everything GM binds to the node. GM sends a snapshot at
// the start of every connection, so this is also the moment a GM that just started, or took over
// from one that died, has heard from this node: it holds nothing of what the GM before it was
// told and had not written yet. SnapshotApplied is called like the Handler's methods, after the
// ResourceDeleted calls of the snapshot's pruning.
type SnapshotObserver interface {
	SnapshotApplied(ctx context.Context)
}

// errInvalidFrame marks frames that decoded but cannot be applied; they are not acknowledged.
var errInvalidFrame = errors.New("invalid frame from GM")

// apply writes one downstream frame to the store and tells the handler what changed. A nil
// error means the write committed (or was a no-op because the store already had that version or
// a newer one) and the frame may be acknowledged.
func (c *Client) apply(ctx context.Context, f *channel.Frame) error {
	logger := klog.FromContext(ctx)
	switch f.Header.Operation {
	case channel.OpInsert, channel.OpUpdate:
		key, err := resourceKey(f)
		if err != nil {
			return err
		}
		r := store.Resource{Key: key, Version: f.Version, Object: f.Content}
		changed, err := c.store.PutResource(r)
		if err != nil {
			return fmt.Errorf("applying %s of %s version %d: %w", f.Header.Operation, key, f.Version, err)
		}
		c.countApplied(changed)
		if !changed {
			logger.V(4).Info("Ignoring a frame the store already has", "resource", key.String(), "version", f.Version)
			return nil
		}
		logger.V(4).Info("Resource changed", "resource", key.String(), "version", f.Version)
		c.handler.ResourceChanged(ctx, r)
	case channel.OpDelete:
		key, err := resourceKey(f)
		if err != nil {
			return err
		}
		changed, err := c.store.DeleteResource(key, f.Version)
		if err != nil {
			return fmt.Errorf("applying delete of %s version %d: %w", key, f.Version, err)
		}
		c.countApplied(changed)
		if !changed {
			logger.V(4).Info("Ignoring a delete of a resource the store does not hold at an older version", "resource", key.String(), "version", f.Version)
			return nil
		}
		logger.V(4).Info("Resource deleted", "resource", key.String(), "version", f.Version)
		c.handler.ResourceDeleted(ctx, key)
	case channel.OpSync:
		present, err := parseSync(f.Content)
		if err != nil {
			return err
		}
		removed, err := c.store.PruneExcept(present)
		if err != nil {
			return fmt.Errorf("applying the snapshot's sync of %d resources: %w", len(present), err)
		}
		c.countApplied(len(removed) > 0)
		logger.V(2).Info("Snapshot from GM applied", "resources", len(present), "pruned", len(removed))
		for _, key := range removed {
			logger.V(4).Info("Resource pruned: GM no longer binds it to this node", "resource", key.String())
			c.handler.ResourceDeleted(ctx, key)
		}
		if observer, ok := c.handler.(SnapshotObserver); ok {
			observer.SnapshotApplied(ctx)
		}
	default:
		return fmt.Errorf("%w: GM may not send %q frames", errInvalidFrame, f.Header.Operation)
	}
	return nil
}

func (c *Client) countApplied(changed bool) {
	if changed {
		c.metrics.framesApplied.WithLabelValues(frameChanged).Inc()
	} else {
		c.metrics.framesApplied.WithLabelValues(frameUnchanged).Inc()
	}
}

// resourceKey checks what channel.Decode leaves to the receiver: a resource frame must carry a
// version, because the store orders states by it and a frame without one could never be
// ordered against a later one.
func resourceKey(f *channel.Frame) (store.ResourceKey, error) {
	k := f.Header.Key()
	key := store.ResourceKey{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name}
	if f.Version == 0 {
		return store.ResourceKey{}, fmt.Errorf("%w: %s frame for %s without a resource version", errInvalidFrame, f.Header.Operation, key)
	}
	return key, nil
}

// parseSync decodes a sync frame's list of present resources. Anything odd rejects the whole
// frame: pruning against a garbled list would delete resources the node still runs.
func parseSync(content []byte) (map[store.ResourceKey]uint64, error) {
	if len(content) == 0 {
		return nil, fmt.Errorf("%w: sync frame without its list of resources", errInvalidFrame)
	}
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.DisallowUnknownFields()
	var entries []channel.SyncEntry
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("%w: sync list: %v", errInvalidFrame, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the sync list", errInvalidFrame)
	}
	if entries == nil {
		// "null" is not an empty snapshot; only "[]" says the node has nothing.
		return nil, fmt.Errorf("%w: sync list is null", errInvalidFrame)
	}
	present := make(map[store.ResourceKey]uint64, len(entries))
	for i, e := range entries {
		// Lowered like Header.Key lowers the kinds of insert frames, so both name one resource.
		key := store.ResourceKey{Kind: strings.ToLower(e.Kind), Namespace: e.Namespace, Name: e.Name}
		if key.Kind == "" || key.Name == "" {
			return nil, fmt.Errorf("%w: sync entry %d (%q) lacks a kind or a name", errInvalidFrame, i, e.String())
		}
		present[key] = e.Version
	}
	return present, nil
}
