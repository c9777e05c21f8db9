package scene

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeterministic(t *testing.T) {
	a, err := New(DefaultConfig())
	require.NoError(t, err)
	b, err := New(DefaultConfig())
	require.NoError(t, err)
	frameA, truthA := a.Render(1, 120)
	frameB, truthB := b.Render(1, 120)
	require.Equal(t, frameA.RGB, frameB.RGB)
	require.Equal(t, truthA, truthB)
	require.Equal(t, truthA, a.GroundTruth(1, 120), "noise does not change the ground truth")
	other := DefaultConfig()
	other.Seed = 2
	c, err := New(other)
	require.NoError(t, err)
	frameC, _ := c.Render(1, 120)
	require.NotEqual(t, frameA.RGB, frameC.RGB)
}

// TestSceneHasWhatTheExampleNeeds: every person appears, some in more than one camera, some
// re-enter a camera they left, and some are partly hidden.
func TestSceneHasWhatTheExampleNeeds(t *testing.T) {
	sc, err := New(DefaultConfig())
	require.NoError(t, err)
	cameras := map[int]map[int]bool{}
	reentries, partial := 0, 0
	for c := 0; c < sc.Config.Cameras; c++ {
		visible := map[int]bool{}
		entries := map[int]int{}
		for frame := 0; frame < sc.Config.Frames; frame++ {
			truth := sc.GroundTruth(c, frame)
			now := map[int]bool{}
			for _, gt := range truth {
				now[gt.Person] = true
				if !visible[gt.Person] {
					entries[gt.Person]++
				}
				if cameras[gt.Person] == nil {
					cameras[gt.Person] = map[int]bool{}
				}
				cameras[gt.Person][c] = true
				if gt.Visibility < 0.9 {
					partial++
				}
				require.False(t, gt.Box.Empty())
				require.GreaterOrEqual(t, gt.Visibility, MinVisibility)
			}
			visible = now
		}
		for _, n := range entries {
			if n > 1 {
				reentries++
			}
		}
	}
	require.Len(t, cameras, sc.Config.People, "everyone appears")
	multi := 0
	for _, seen := range cameras {
		if len(seen) > 1 {
			multi++
		}
	}
	require.GreaterOrEqual(t, multi, sc.Config.People/2, "people crossing cameras")
	require.Positive(t, reentries, "re-entries")
	require.Positive(t, partial, "occlusions")
}

func TestValidate(t *testing.T) {
	for _, cfg := range []Config{{People: 0, Frames: 1, Cameras: 1}, {People: 1, Frames: 0, Cameras: 1}, {People: 1, Frames: 1, Cameras: 9}} {
		_, err := New(cfg)
		require.Error(t, err)
	}
}
