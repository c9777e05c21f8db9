package runtime

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
)

func TestBindingsUnionAndChanges(t *testing.T) {
	b := NewBindings()
	var mu sync.Mutex
	var changes []string
	b.OnChange(func(target channel.Key) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, target.Name)
	})
	model := Key("Model", "ns", "m")
	secret := Key("Secret", "ns", "s")
	ji := Key("JointInferenceService", "ns", "ji")
	il := Key("IncrementalLearningJob", "ns", "il")

	b.Set(ji, []channel.Key{model, secret}, []string{"edge-1", "", "edge-1"})
	require.Equal(t, []string{"edge-1"}, b.Nodes(model))
	require.Equal(t, []string{"edge-1"}, b.Nodes(secret))
	require.ElementsMatch(t, []string{"m", "s"}, changes)

	changes = nil
	b.Set(il, []channel.Key{model}, []string{"edge-2", "edge-1"})
	require.Equal(t, []string{"edge-1", "edge-2"}, b.Nodes(model))
	require.Equal(t, []string{"m"}, changes)

	changes = nil
	b.Set(il, []channel.Key{model}, []string{"edge-1", "edge-2"}) // same again: no change
	require.Empty(t, changes)

	b.Set(ji, nil, nil) // the JI is gone
	require.Equal(t, []string{"edge-1", "edge-2"}, b.Nodes(model), "still needed by the IL job")
	require.Empty(t, b.Nodes(secret))
	require.Equal(t, []string{"s"}, changes)

	b.Set(il, []channel.Key{model}, nil)
	require.Empty(t, b.Nodes(model))
}

func TestVersion(t *testing.T) {
	v, err := Version("12345")
	require.NoError(t, err)
	require.Equal(t, uint64(12345), v)
	_, err = Version("abc")
	require.ErrorContains(t, err, `resourceVersion "abc" is not a number`)
}

// TestBindingsMatchTheUnionOfTheirReferrers replays random Sets and compares every target's
// nodes and every change callback with the union recomputed from scratch.
func TestBindingsMatchTheUnionOfTheirReferrers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := NewBindings()
	var changes []channel.Key
	b.OnChange(func(target channel.Key) { changes = append(changes, target) })
	targets := []channel.Key{Key("Model", "ns", "a"), Key("Model", "ns", "b"), Key("Secret", "ns", "c")}
	nodes := []string{"edge-1", "edge-2", "edge-3", ""}
	// want is what each referrer needs: its targets and nodes.
	type need struct {
		targets []channel.Key
		nodes   []string
	}
	want := map[channel.Key]need{}
	union := func(target channel.Key) []string {
		set := map[string]bool{}
		for _, n := range want {
			if slices.Contains(n.targets, target) {
				for _, node := range n.nodes {
					if node != "" {
						set[node] = true
					}
				}
			}
		}
		return slices.Sorted(maps.Keys(set))
	}
	for step := range 2000 {
		referrer := Key("JointInferenceService", "ns", fmt.Sprintf("ji-%d", rng.IntN(6)))
		var ts []channel.Key
		for range rng.IntN(4) {
			ts = append(ts, targets[rng.IntN(len(targets))]) // duplicates too
		}
		var ns []string
		for range rng.IntN(4) {
			ns = append(ns, nodes[rng.IntN(len(nodes))])
		}
		beforeNodes := map[channel.Key][]string{}
		for _, target := range targets {
			beforeNodes[target] = union(target)
		}
		want[referrer] = need{targets: ts, nodes: ns}
		changes = nil
		b.Set(referrer, ts, ns)
		var wantChanges []channel.Key
		for _, target := range targets {
			after := union(target)
			got := b.Nodes(target)
			require.True(t, slices.Equal(after, got), "step %d, %s: want %v, got %v", step, target.Name, after, got)
			if !slices.Equal(beforeNodes[target], after) {
				wantChanges = append(wantChanges, target)
			}
		}
		require.ElementsMatch(t, wantChanges, changes, "step %d", step)
	}
}
