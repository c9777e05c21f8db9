package multiedge

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAssign(t *testing.T) {
	inf := math.Inf(1)
	for name, tc := range map[string]struct {
		cost [][]float64
		want []int
	}{
		"square":                    {cost: [][]float64{{4, 1, 3}, {2, 0, 5}, {3, 2, 2}}, want: []int{1, 0, 2}},
		"more columns":              {cost: [][]float64{{5, 1, 9}, {1, 5, 9}}, want: []int{1, 0}},
		"more rows":                 {cost: [][]float64{{5, 1}, {1, 5}, {0, 0}}, want: []int{1, -1, 0}},
		"forbidden stays unmatched": {cost: [][]float64{{inf, inf}, {1, 2}}, want: []int{-1, 0}},
		"greedy would be worse":     {cost: [][]float64{{1, 2}, {2, 100}}, want: []int{1, 0}},
		"empty":                     {cost: nil, want: nil},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, Assign(tc.cost))
		})
	}
}

func TestBoxIoU(t *testing.T) {
	a := Box{X: 0, Y: 0, W: 10, H: 10}
	require.Equal(t, 1.0, a.IoU(a))
	require.InDelta(t, 50.0/150, a.IoU(Box{X: 5, Y: 0, W: 10, H: 10}), 1e-12)
	require.Zero(t, a.IoU(Box{X: 10, Y: 0, W: 10, H: 10}))
	require.Equal(t, Box{X: 0, Y: 2, W: 3, H: 8}, Box{X: -2, Y: 2, W: 5, H: 20}.Clip(10, 10))
}

func TestDetector(t *testing.T) {
	background := solid(40, 30, 100, 100, 100)
	frame := solid(40, 30, 100, 100, 100)
	paint := func(box Box) {
		for y := box.Y; y < box.Y+box.H; y++ {
			for x := box.X; x < box.X+box.W; x++ {
				frame.Set(x, y, 200, 20, 20)
			}
		}
	}
	paint(Box{X: 2, Y: 3, W: 5, H: 10})
	paint(Box{X: 20, Y: 5, W: 6, H: 12})
	paint(Box{X: 35, Y: 25, W: 2, H: 2}) // below MinArea: noise
	frame.Set(10, 10, 110, 100, 100)     // below the threshold
	detector := Detector{Background: &background, Threshold: 45, MinArea: 10}
	require.Equal(t, []Box{{X: 2, Y: 3, W: 5, H: 10}, {X: 20, Y: 5, W: 6, H: 12}}, detector.Detect(&frame))
	small := solid(10, 10, 0, 0, 0)
	require.Nil(t, detector.Detect(&small), "a frame of another size than the background")
}

func TestTracker(t *testing.T) {
	tracker := Tracker{MaxAge: 2, MinIoU: 0.2}
	at := func(x int) Box { return Box{X: x, Y: 10, W: 10, H: 20} }
	require.Equal(t, []TrackedBox{{1, at(0)}, {2, at(50)}}, tracker.Update([]Box{at(0), at(50)}))
	// Both move right by 2; given in the other order, they keep their tracks.
	require.Equal(t, []TrackedBox{{2, at(52)}, {1, at(2)}}, tracker.Update([]Box{at(52), at(2)}))
	// Track 1 is missed for two frames and found again where its velocity predicts.
	tracker.Update([]Box{at(54)})
	tracker.Update([]Box{at(56)})
	require.Equal(t, []TrackedBox{{1, at(8)}, {2, at(58)}}, tracker.Update([]Box{at(8), at(58)}))
	// Missed for three frames (more than MaxAge): it ends, and a detection there starts track 3.
	for i := 0; i < 3; i++ {
		tracker.Update([]Box{at(60 + 2*i)})
	}
	require.Equal(t, []TrackedBox{{3, at(14)}}, tracker.Update([]Box{at(14)})[:1])

	restarted := Tracker{MaxAge: 2, MinIoU: 0.2}
	restarted.StartAfter(41)
	require.Equal(t, []TrackedBox{{42, at(0)}}, restarted.Update([]Box{at(0)}))
}

func feature(values ...float64) []float64 { return normalize(values) }

func TestGallery(t *testing.T) {
	red, blue, green := feature(1, 0, 0), feature(0, 1, 0), feature(0, 0, 1)
	gallery := NewGallery(GalleryOptions{Threshold: 0.2, BusyFrames: 3})
	ids := func(resp ReIDResponse) []int {
		var out []int
		for _, identity := range resp.Identities {
			out = append(out, identity.Identity)
		}
		return out
	}
	// Camera a: red and blue are new identities 1 and 2.
	require.Equal(t, []int{1, 2}, ids(gallery.Match(&ReIDRequest{Camera: "a", Frame: 0, Tracks: []TrackObservation{{Track: 1, Feature: red}, {Track: 2, Feature: blue}}})))
	// Camera b at the same time sees something red: red is busy in camera a, so it is new (3).
	require.Equal(t, []int{3}, ids(gallery.Match(&ReIDRequest{Camera: "b", Frame: 1, Tracks: []TrackObservation{{Track: 1, Feature: red}}})))
	// A partial green view matches no one: no identity, and nothing is created.
	require.Equal(t, []int{0}, ids(gallery.Match(&ReIDRequest{Camera: "c", Frame: 2, Tracks: []TrackObservation{{Track: 1, Feature: green, Partial: true}}})))
	require.Equal(t, 3, gallery.Len())
	// Later camera c sees blue: it joins identity 2 across cameras.
	require.Equal(t, []int{2}, ids(gallery.Match(&ReIDRequest{Camera: "c", Frame: 40, Tracks: []TrackObservation{{Track: 5, Feature: blue}}})))
	// Camera a's track 2 is a fragment continued by track 9 in the same camera a few frames on:
	// blue is seen in camera c at frame 40, so it is busy for camera a at frame 41.
	require.Equal(t, []int{4}, ids(gallery.Match(&ReIDRequest{Camera: "a", Frame: 41, Tracks: []TrackObservation{{Track: 9, Feature: blue}}})))
	// The tracker of camera b swapped its track 1 onto a blue person: the whole view no longer
	// looks red, so the track is matched afresh.
	got := gallery.Match(&ReIDRequest{Camera: "b", Frame: 100, Tracks: []TrackObservation{{Track: 1, Feature: blue}}})
	require.NotEqual(t, 3, got.Identities[0].Identity)
	// Search ranks by appearance and says where.
	results := gallery.Search([][]float64{red}, 2)
	require.Len(t, results, 2)
	require.Contains(t, []int{1, 3}, results[0].Identity)
	require.NotEmpty(t, results[0].Sightings)
}

func TestExtractFeature(t *testing.T) {
	require.Nil(t, ExtractFeature(nil))
	grey := solid(6, 12, 120, 120, 120)
	require.Equal(t, make([]float64, FeatureLength), ExtractFeature(&grey), "grey carries no appearance")
	striped := solid(6, 12, 200, 30, 30)
	for y := 0; y < 6; y += 2 {
		for x := 0; x < 6; x++ {
			striped.Set(x, y, 100, 15, 15)
		}
	}
	plain := solid(6, 12, 200, 30, 30)
	f1, f2 := ExtractFeature(&plain), ExtractFeature(&striped)
	require.InDelta(t, 1, math.Sqrt(dot(f1, f1)), 1e-9)
	require.Greater(t, CosineDistance(f1, f2), 0.0, "texture changes the feature")
	require.Less(t, CosineDistance(f1, f2), 0.5, "but the colour is the same")
}

func dot(a, b []float64) float64 {
	var sum float64
	for i := range a {
		sum += a[i] * b[i]
	}
	return sum
}

func TestGalleryIsBounded(t *testing.T) {
	gallery := NewGallery(GalleryOptions{Threshold: 0.01, MaxIdentities: 8, MaxTracks: 8})
	for i := 0; i < 100; i++ {
		// Every track looks different from all others: each founds an identity.
		f := make([]float64, 100)
		f[i] = 1
		resp := gallery.Match(&ReIDRequest{Camera: "a", Frame: i, Tracks: []TrackObservation{{Track: i + 1, Feature: f}}})
		require.Equal(t, i+1, resp.Identities[0].Identity, "identity numbers are never reused")
		require.LessOrEqual(t, gallery.Len(), 8)
		require.LessOrEqual(t, len(gallery.byTrack), 8)
	}
}
