package kb

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMatch is one query sample against the MNIST example's index: 3 tasks of 50
// centroids in 193 dimensions.
func BenchmarkMatch(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	index := &Index{Format: IndexFormat, FeatureSpace: "bench", Dimension: 193}
	for t := 0; t < 3; t++ {
		task := Task{ID: string(rune('a' + t)), Model: Model{URL: "m"}, Radius: 1}
		for c := 0; c < 50; c++ {
			centroid := make([]float64, index.Dimension)
			for i := range centroid {
				centroid[i] = rng.Float64()
			}
			task.Centroids = append(task.Centroids, centroid)
		}
		index.Tasks = append(index.Tasks, task)
	}
	sample := make([]float64, index.Dimension)
	for i := range sample {
		sample[i] = rng.Float64()
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = index.Match(sample)
	}
}
