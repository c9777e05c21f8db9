package runtime

import (
	"slices"
	"sync"

	"github.com/sedna-go/sedna/pkg/channel"
)

// Bindings records, for shared objects (Models, Secrets), which referrers need them on which
// nodes. The node set of a target is the union over its referrers. When a target's node set
// changes, OnChange is called with the target (outside the lock) so its controller can enqueue it.
type Bindings struct {
	mu       sync.Mutex
	byTarget map[channel.Key]map[channel.Key][]string // target → referrer → nodes
	targets  map[channel.Key][]channel.Key            // referrer → targets
	onChange []func(target channel.Key)
}

// NewBindings returns empty bindings.
func NewBindings() *Bindings {
	return &Bindings{byTarget: map[channel.Key]map[channel.Key][]string{}, targets: map[channel.Key][]channel.Key{}}
}

// OnChange registers a callback for node-set changes. Register before use.
func (b *Bindings) OnChange(fn func(target channel.Key)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onChange = append(b.onChange, fn)
}

// Set replaces what referrer needs: each target in targets on nodes. An empty targets unbinds it.
func (b *Bindings) Set(referrer channel.Key, targets []channel.Key, nodes []string) {
	nodes = normalize(nodes)
	b.mu.Lock()
	before := map[channel.Key][]string{}
	affected := map[channel.Key]struct{}{}
	for _, t := range b.targets[referrer] {
		affected[t] = struct{}{}
	}
	for _, t := range targets {
		affected[t] = struct{}{}
	}
	for t := range affected {
		before[t] = b.nodesLocked(t)
	}
	for _, t := range b.targets[referrer] {
		delete(b.byTarget[t], referrer)
		if len(b.byTarget[t]) == 0 {
			delete(b.byTarget, t)
		}
	}
	delete(b.targets, referrer)
	if len(nodes) > 0 {
		for _, t := range targets {
			if b.byTarget[t] == nil {
				b.byTarget[t] = map[channel.Key][]string{}
			}
			b.byTarget[t][referrer] = nodes
			b.targets[referrer] = append(b.targets[referrer], t)
		}
	}
	var changed []channel.Key
	for t := range affected {
		if !slices.Equal(before[t], b.nodesLocked(t)) {
			changed = append(changed, t)
		}
	}
	callbacks := slices.Clone(b.onChange)
	b.mu.Unlock()
	for _, t := range changed {
		for _, fn := range callbacks {
			fn(t)
		}
	}
}

// Nodes returns the sorted union of nodes that need target.
func (b *Bindings) Nodes(target channel.Key) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nodesLocked(target)
}

func (b *Bindings) nodesLocked(target channel.Key) []string {
	var nodes []string
	for _, ns := range b.byTarget[target] {
		nodes = append(nodes, ns...)
	}
	return normalize(nodes)
}

func normalize(nodes []string) []string {
	out := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == "" })
	slices.Sort(out)
	return slices.Compact(out)
}
