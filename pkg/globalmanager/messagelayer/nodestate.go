package messagelayer

import (
	"slices"
	"sync"
	"time"
)

// NodeStates records, per node, whether its LC is connected and since when (contract C3): what
// a controller needs to tell "the edge is offline" (its reports wait in the LC's outbox) from
// "the edge is connected and silent". The hub reports each connection that becomes a node's
// current one (Connected) and each that ends (Disconnected); a connection replaced by a newer
// one of the same node ends without disconnecting the node.
//
// It implements runtime.NodeChannel.
type NodeStates struct {
	now func() time.Time

	mu       sync.Mutex
	current  map[string]nodeConnection
	onChange []func(node string)
}

// nodeConnection is a node's current connection: an identity the hub chooses and when it began.
type nodeConnection struct {
	id    any
	since time.Time
}

// NewNodeStates returns states with no node connected. now may be nil (time.Now).
func NewNodeStates(now func() time.Time) *NodeStates {
	if now == nil {
		now = time.Now
	}
	return &NodeStates{now: now, current: map[string]nodeConnection{}}
}

// ConnectedSince returns when node's current connection began, and false while none is up.
func (s *NodeStates) ConnectedSince(node string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.current[node]
	return c.since, ok
}

// ConnectedNodes returns the connected nodes, sorted.
func (s *NodeStates) ConnectedNodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodes := make([]string, 0, len(s.current))
	for n := range s.current {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	return nodes
}

// OnChange registers fn, called with a node whose LC connected, reconnected or disconnected.
// fn runs on the hub's connection goroutine, outside any lock: it must only enqueue.
func (s *NodeStates) OnChange(fn func(node string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, fn)
}

// Connected records that connection id (any comparable value, e.g. the hub's *connection) is
// now node's current one; a reconnect starts a new period even if the old connection has not
// ended yet.
func (s *NodeStates) Connected(node string, id any) {
	s.mu.Lock()
	s.current[node] = nodeConnection{id: id, since: s.now()}
	callbacks := slices.Clone(s.onChange)
	s.mu.Unlock()
	for _, fn := range callbacks {
		fn(node)
	}
}

// Disconnected records that connection id of node ended. It changes nothing when id is no longer
// the node's current connection (a newer one replaced it).
func (s *NodeStates) Disconnected(node string, id any) {
	s.mu.Lock()
	c, ok := s.current[node]
	if !ok || c.id != id {
		s.mu.Unlock()
		return
	}
	delete(s.current, node)
	callbacks := slices.Clone(s.onChange)
	s.mu.Unlock()
	for _, fn := range callbacks {
		fn(node)
	}
}
