package lifelong

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/kb"
)

// blob returns n points around centre with standard deviation spread.
func blob(rng *rand.Rand, centre []float64, spread float64, n int) [][]float64 {
	points := make([][]float64, n)
	for i := range points {
		points[i] = make([]float64, len(centre))
		for j, c := range centre {
			points[i][j] = c + rng.NormFloat64()*spread
		}
	}
	return points
}

func TestKMeansFindsSeparatedClusters(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	points := append(blob(rng, []float64{0, 0}, 0.1, 200), blob(rng, []float64{5, 5}, 0.1, 200)...)
	centres, err := KMeans(points, 2, 50, 7)
	require.NoError(t, err)
	require.Len(t, centres, 2)
	if centres[0][0] > centres[1][0] {
		centres[0], centres[1] = centres[1], centres[0]
	}
	require.InDelta(t, 0, centres[0][0], 0.05)
	require.InDelta(t, 0, centres[0][1], 0.05)
	require.InDelta(t, 5, centres[1][0], 0.05)
	require.InDelta(t, 5, centres[1][1], 0.05)

	few, err := KMeans([][]float64{{1}, {2}}, 5, 10, 1)
	require.NoError(t, err)
	require.Equal(t, [][]float64{{1}, {2}}, few)
	_, err = KMeans([][]float64{{1}, {2, 3}}, 1, 1, 1)
	require.ErrorContains(t, err, "point 1 has 2 values")
	_, err = KMeans(nil, 1, 1, 1)
	require.Error(t, err)
}

func TestQuantile(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3}
	require.Equal(t, 1.0, Quantile(values, 0))
	require.Equal(t, 3.0, Quantile(values, 0.5))
	require.Equal(t, 5.0, Quantile(values, 1))
	require.Equal(t, 4.6, Quantile(values, 0.9))
	require.Equal(t, []float64{5, 1, 4, 2, 3}, values, "the input is not reordered")
}

func TestSummariseDetectsAnUnseenTask(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	known := blob(rng, []float64{0, 0, 0}, 1, 500)
	task, err := Summarise("shape-round", map[string]string{"shape": "round"}, kb.Model{URL: "m"}, known, SummaryOptions{Centroids: 8, Quantile: 0.9, Seed: 1})
	require.NoError(t, err)
	require.Len(t, task.Centroids, 8)
	require.Equal(t, 500, task.NumberOfTrainSamples)
	index, err := Merge(nil, "test", 3, []kb.Task{task})
	require.NoError(t, err)

	// Fresh samples of the known task mostly fall inside; a shifted task mostly outside.
	var knownScores, unseenScores []float64
	for _, p := range blob(rng, []float64{0, 0, 0}, 1, 500) {
		knownScores = append(knownScores, index.Match(p).Score)
	}
	for _, p := range blob(rng, []float64{4, 0, 0}, 1, 500) {
		unseenScores = append(unseenScores, index.Match(p).Score)
	}
	require.Greater(t, AUROC(unseenScores, knownScores), 0.95)
	flagged := DetectAt(unseenScores, knownScores, 1)
	require.InDelta(t, 0.1, float64(flagged.FalsePositives)/500, 0.05, "about 1-quantile of the known task is flagged")
	require.Greater(t, flagged.Recall(), 0.8)
}

func TestMerge(t *testing.T) {
	first := kb.Task{ID: "a", Model: kb.Model{URL: "a1"}, Centroids: [][]float64{{0}}, Radius: 1}
	previous, err := Merge(nil, "space", 1, []kb.Task{first})
	require.NoError(t, err)
	second := kb.Task{ID: "b", Model: kb.Model{URL: "b1"}, Centroids: [][]float64{{5}}, Radius: 1}
	replacement := kb.Task{ID: "a", Model: kb.Model{URL: "a2"}, Centroids: [][]float64{{0}}, Radius: 2}
	merged, err := Merge(previous, "space", 1, []kb.Task{second, replacement})
	require.NoError(t, err)
	require.Equal(t, []string{"b", "a"}, []string{merged.Tasks[0].ID, merged.Tasks[1].ID})
	require.Equal(t, "a2", merged.Tasks[1].Model.URL)
	_, err = Merge(previous, "other", 1, nil)
	require.ErrorContains(t, err, "feature space space/1")
	_, err = Merge(nil, "space", 2, []kb.Task{first})
	require.ErrorContains(t, err, "centroids[0] has 1 values")
}

func TestDefinitionGroupsByAttribute(t *testing.T) {
	type sample struct{ attributes map[string]string }
	samples := []sample{
		{map[string]string{"rotation": "45"}}, {map[string]string{"rotation": "0"}}, {map[string]string{"rotation": "45"}},
		{map[string]string{"rotation": "a b/c"}},
	}
	order, groups, err := Group(Definition{Attribute: "rotation"}, samples, func(s sample) map[string]string { return s.attributes })
	require.NoError(t, err)
	require.Equal(t, []string{"rotation-45", "rotation-0", "rotation-a_b_c"}, order)
	require.Len(t, groups["rotation-45"], 2)
	_, _, err = Group(Definition{Attribute: "weather"}, samples, func(s sample) map[string]string { return s.attributes })
	require.ErrorContains(t, err, `sample 0: the sample has no value for the task attribute "weather"`)
}

func TestRouterLetsCloseTasksCompeteOnConfidence(t *testing.T) {
	index, err := Merge(nil, "space", 1, []kb.Task{
		{ID: "near", Model: kb.Model{URL: "n"}, Centroids: [][]float64{{0}}, Radius: 2},
		{ID: "close", Model: kb.Model{URL: "c"}, Centroids: [][]float64{{1.2}}, Radius: 2},
		{ID: "far", Model: kb.Model{URL: "f"}, Centroids: [][]float64{{10}}, Radius: 2},
	})
	require.NoError(t, err)
	router, err := NewRouter(index)
	require.NoError(t, err)
	confidence := func(task string) (float64, error) {
		return map[string]float64{"near": 0.6, "close": 0.9, "far": 1}[task], nil
	}
	// By distance alone, 0.5 goes to "near" (0.25 vs 0.35).
	allocation, err := router.Allocate([]float64{0.5}, confidence)
	require.NoError(t, err)
	require.Equal(t, "near", allocation.Task)
	require.False(t, allocation.Unseen)
	// With a margin "close" competes and wins on confidence; "far" never competes.
	router.Margin = 0.5
	allocation, err = router.Allocate([]float64{0.5}, confidence)
	require.NoError(t, err)
	require.Equal(t, "close", allocation.Task)
	require.Equal(t, 0.9, allocation.Confidence)
	// An unseen sample still gets the nearest task's model as its best guess.
	allocation, err = router.Allocate([]float64{-7}, nil)
	require.NoError(t, err)
	require.True(t, allocation.Unseen)
	require.Equal(t, "near", allocation.Task)
	_, err = router.Allocate([]float64{1, 2}, nil)
	require.ErrorContains(t, err, "2 features")
	require.Equal(t, 0.7, MaxSoftmax([]float64{0.1, 0.7, 0.2}))
}
