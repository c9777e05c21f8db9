package federated

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/floats"
)

func randomWeights(rng *rand.Rand, shapes ...[]int) Weights {
	w := make(Weights, len(shapes))
	for i, shape := range shapes {
		w[i] = NewLayer(shape...)
		for j := range w[i].Values {
			w[i].Values[j] = rng.NormFloat64()
		}
	}
	return w
}

func aggregate(t *testing.T, agg Aggregator, updates []*Update) (Weights, int) {
	t.Helper()
	acc := agg.NewRound()
	for _, u := range updates {
		acc.Add(u)
	}
	w, total, err := acc.Result()
	require.NoError(t, err)
	return w, total
}

// The reference is computed independently with gonum: per layer,
// sum_i n_i·w_i scaled by 1/sum_i n_i.
func TestFedAvgMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][]int{{3, 4}, {4}, {}, {2, 2, 2}}
	var updates []*Update
	for i := range 7 {
		updates = append(updates, &Update{NumSamples: 1 + rng.IntN(1000) + i, Weights: randomWeights(rng, shapes...)})
	}
	got, total := aggregate(t, FedAvg{}, updates)
	wantTotal := 0
	for _, u := range updates {
		wantTotal += u.NumSamples
	}
	require.Equal(t, wantTotal, total)
	for layer := range shapes {
		want := make([]float64, len(updates[0].Weights[layer].Values))
		for _, u := range updates {
			floats.AddScaled(want, float64(u.NumSamples), u.Weights[layer].Values)
		}
		floats.Scale(1/float64(wantTotal), want)
		require.Equal(t, shapes[layer], got[layer].Shape)
		require.True(t, floats.EqualApprox(want, got[layer].Values, 1e-12), "layer %d: %v vs %v", layer, want, got[layer].Values)
	}
}

func TestMeanMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var updates []*Update
	for range 5 {
		updates = append(updates, &Update{NumSamples: rng.IntN(50), Weights: randomWeights(rng, []int{6})})
	}
	got, _ := aggregate(t, Mean{}, updates)
	want := make([]float64, 6)
	for _, u := range updates {
		floats.Add(want, u.Weights[0].Values)
	}
	floats.Scale(1.0/5, want)
	require.True(t, floats.EqualApprox(want, got[0].Values, 1e-12))
}

func TestAggregationProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 50 {
		model := randomWeights(rng, []int{5}, []int{2, 3})
		n := 1 + rng.IntN(6)
		// FedAvg and Mean of identical updates return the update.
		var same []*Update
		for range n {
			same = append(same, &Update{NumSamples: rng.IntN(100), Weights: model.Clone()})
		}
		for _, agg := range []Aggregator{FedAvg{}, Mean{}} {
			got, _ := aggregate(t, agg, same)
			for i := range model {
				require.True(t, floats.EqualApprox(model[i].Values, got[i].Values, 1e-12), "trial %d %s", trial, agg.Name())
			}
		}
		// FedAvg is a convex combination: each value lies between the
		// smallest and the largest contribution, and scaling every sample
		// count by the same factor changes nothing.
		var mixed, scaled []*Update
		for range n {
			u := &Update{NumSamples: 1 + rng.IntN(100), Weights: randomWeights(rng, []int{5}, []int{2, 3})}
			mixed = append(mixed, u)
			scaled = append(scaled, &Update{NumSamples: 3 * u.NumSamples, Weights: u.Weights})
		}
		got, _ := aggregate(t, FedAvg{}, mixed)
		gotScaled, _ := aggregate(t, FedAvg{}, scaled)
		for i := range got {
			for j, v := range got[i].Values {
				lo, hi := math.Inf(1), math.Inf(-1)
				for _, u := range mixed {
					lo, hi = math.Min(lo, u.Weights[i].Values[j]), math.Max(hi, u.Weights[i].Values[j])
				}
				require.GreaterOrEqual(t, v, lo-1e-12)
				require.LessOrEqual(t, v, hi+1e-12)
				require.InDelta(t, v, gotScaled[i].Values[j], 1e-12)
			}
		}
	}
}

func TestFedAvgWithoutSamplesFallsBackToMean(t *testing.T) {
	got, total := aggregate(t, FedAvg{}, []*Update{
		{NumSamples: 0, Weights: Weights{{Shape: []int{2}, Values: []float64{1, 2}}}},
		{NumSamples: 0, Weights: Weights{{Shape: []int{2}, Values: []float64{3, 6}}}},
	})
	require.Equal(t, 0, total)
	require.Equal(t, []float64{2, 4}, got[0].Values)
	_, _, err := FedAvg{}.NewRound().Result()
	require.Error(t, err)
}

// The proximal gradient is checked against a central finite difference of
// the proximal term.
func TestProximalTermGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	w, global := randomWeights(rng, []int{3}, []int{2, 2}), randomWeights(rng, []int{3}, []int{2, 2})
	const mu = 0.3
	grad := zeroLike(w)
	require.NoError(t, AddProximalGradient(grad, w, global, mu))
	const h = 1e-6
	for i := range w {
		for j := range w[i].Values {
			orig := w[i].Values[j]
			w[i].Values[j] = orig + h
			up, err := ProximalTerm(w, global, mu)
			require.NoError(t, err)
			w[i].Values[j] = orig - h
			down, err := ProximalTerm(w, global, mu)
			require.NoError(t, err)
			w[i].Values[j] = orig
			require.InDelta(t, (up-down)/(2*h), grad[i].Values[j], 1e-6)
		}
	}
	term, err := ProximalTerm(w, w, mu)
	require.NoError(t, err)
	require.Zero(t, term)
	require.Error(t, AddProximalGradient(grad, w, Weights{{Shape: []int{3}, Values: make([]float64, 3)}}, mu))
	require.Error(t, AddProximalGradient(grad, w, global, -1))
}

func TestAggregatorByName(t *testing.T) {
	for _, name := range []string{AlgorithmFedAvg, AlgorithmMean} {
		agg, err := AggregatorByName(name)
		require.NoError(t, err)
		require.Equal(t, name, agg.Name())
	}
	_, err := AggregatorByName("MistNet")
	require.ErrorContains(t, err, "MistNet")
}
