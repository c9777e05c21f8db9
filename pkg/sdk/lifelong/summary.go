package lifelong

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// KMeans returns k centres of points (k-means++ seeding from seed, then Lloyd iterations until
// no point changes cluster or iterations run out). With fewer points than k, every point is a
// centre.
func KMeans(points [][]float64, k, iterations int, seed uint64) ([][]float64, error) {
	if len(points) == 0 {
		return nil, errors.New("k-means: no points")
	}
	if k < 1 {
		return nil, fmt.Errorf("k-means: k=%d, want at least 1", k)
	}
	dimension := len(points[0])
	for i, p := range points {
		if len(p) != dimension {
			return nil, fmt.Errorf("k-means: point %d has %d values, point 0 has %d", i, len(p), dimension)
		}
	}
	if len(points) <= k {
		centres := make([][]float64, len(points))
		for i, p := range points {
			centres[i] = slices.Clone(p)
		}
		return centres, nil
	}
	rng := rand.New(rand.NewPCG(seed, seed^0xc3a7))
	centres := [][]float64{slices.Clone(points[rng.IntN(len(points))])}
	nearest := make([]float64, len(points))
	for i, p := range points {
		nearest[i] = squaredDistance(p, centres[0])
	}
	for len(centres) < k {
		var total float64
		for _, d := range nearest {
			total += d
		}
		pick := 0
		if total > 0 {
			target := rng.Float64() * total
			for i, d := range nearest {
				target -= d
				if target <= 0 {
					pick = i
					break
				}
			}
		} else {
			pick = rng.IntN(len(points))
		}
		centre := slices.Clone(points[pick])
		centres = append(centres, centre)
		for i, p := range points {
			nearest[i] = min(nearest[i], squaredDistance(p, centre))
		}
	}
	assignment := make([]int, len(points))
	for i := range assignment {
		assignment[i] = -1
	}
	for iteration := 0; iteration < iterations; iteration++ {
		changed := false
		for i, p := range points {
			best, _ := nearestCentre(centres, p)
			if best != assignment[i] {
				assignment[i], changed = best, true
			}
		}
		if !changed {
			break
		}
		sums := make([][]float64, k)
		counts := make([]int, k)
		for c := range sums {
			sums[c] = make([]float64, dimension)
		}
		for i, p := range points {
			c := assignment[i]
			counts[c]++
			for j, v := range p {
				sums[c][j] += v
			}
		}
		for c := range centres {
			if counts[c] == 0 {
				continue // an empty cluster keeps its centre
			}
			for j := range centres[c] {
				centres[c][j] = sums[c][j] / float64(counts[c])
			}
		}
	}
	return centres, nil
}

func squaredDistance(a, b []float64) float64 {
	var sum float64
	for i, v := range a {
		d := v - b[i]
		sum += d * d
	}
	return sum
}

// nearestCentre returns the index of the centre nearest to p and the distance to it.
func nearestCentre(centres [][]float64, p []float64) (int, float64) {
	best, bestDistance := 0, math.Inf(1)
	for c, centre := range centres {
		if d := squaredDistance(p, centre); d < bestDistance {
			best, bestDistance = c, d
		}
	}
	return best, math.Sqrt(bestDistance)
}

// NearestDistances returns each point's distance to its nearest centre.
func NearestDistances(centres, points [][]float64) []float64 {
	distances := make([]float64, len(points))
	for i, p := range points {
		_, distances[i] = nearestCentre(centres, p)
	}
	return distances
}

// Quantile returns the q-quantile (0..1) of values by linear interpolation.
func Quantile(values []float64, q float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	position := q * float64(len(sorted)-1)
	low := int(math.Floor(position))
	high := min(low+1, len(sorted)-1)
	return sorted[low] + (position-float64(low))*(sorted[high]-sorted[low])
}
