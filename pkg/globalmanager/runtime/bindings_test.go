package runtime

import (
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
