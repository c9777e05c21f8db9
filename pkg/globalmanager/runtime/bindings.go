package runtime

import (
	"maps"
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
	// counts is, per target, how many referrers need it on each node: a Set touches only its
	// referrer's nodes, however many referrers share the target (thousands share a Model).
	counts   map[channel.Key]map[string]int
	onChange []func(target channel.Key)
}

// NewBindings returns empty bindings.
func NewBindings() *Bindings {
	return &Bindings{byTarget: map[channel.Key]map[channel.Key][]string{}, targets: map[channel.Key][]channel.Key{},
		counts: map[channel.Key]map[string]int{}}
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
	// before holds, for each (target, node) the Set touches, whether the target was needed there.
	before := map[channel.Key]map[string]bool{}
	add := func(t channel.Key, n string, delta int) {
		if before[t] == nil {
			before[t] = map[string]bool{}
		}
		if _, ok := before[t][n]; !ok {
			before[t][n] = b.counts[t][n] > 0
		}
		if b.counts[t] == nil {
			b.counts[t] = map[string]int{}
		}
		if b.counts[t][n] += delta; b.counts[t][n] <= 0 {
			delete(b.counts[t], n)
			if len(b.counts[t]) == 0 {
				delete(b.counts, t)
			}
		}
	}
	for _, t := range b.targets[referrer] {
		for _, n := range b.byTarget[t][referrer] {
			add(t, n, -1)
		}
		delete(b.byTarget[t], referrer)
		if len(b.byTarget[t]) == 0 {
			delete(b.byTarget, t)
		}
	}
	delete(b.targets, referrer)
	if len(nodes) > 0 {
		for _, t := range targets {
			if _, dup := b.byTarget[t][referrer]; dup {
				continue
			}
			if b.byTarget[t] == nil {
				b.byTarget[t] = map[channel.Key][]string{}
			}
			b.byTarget[t][referrer] = nodes
			b.targets[referrer] = append(b.targets[referrer], t)
			for _, n := range nodes {
				add(t, n, 1)
			}
		}
	}
	var changed []channel.Key
	for t, was := range before {
		for n, needed := range was {
			if needed != (b.counts[t][n] > 0) {
				changed = append(changed, t)
				break
			}
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
	return slices.Sorted(maps.Keys(b.counts[target]))
}

func normalize(nodes []string) []string {
	out := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == "" })
	slices.Sort(out)
	return slices.Compact(out)
}
