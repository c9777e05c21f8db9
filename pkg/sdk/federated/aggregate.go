package federated

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Algorithm names; the server serves its WebSocket on "/<name>" as upstream
// does ("/FedAvg").
const (
	AlgorithmFedAvg = "FedAvg"
	AlgorithmMean   = "Mean"
)

// Aggregator combines the updates of one round into the next global model.
// Accumulate is called once per accepted update, so an aggregator keeps a
// running sum rather than every update: the server's memory does not grow
// with the number of clients.
type Aggregator interface {
	// Name is the algorithm's name, the WebSocket path.
	Name() string
	// NewRound starts an empty accumulation.
	NewRound() Accumulation
}

// Accumulation is one round's running aggregate.
type Accumulation interface {
	// Add folds in one update; the caller has checked its shapes.
	Add(u *Update)
	// Result is the aggregate of everything added, with the total number of
	// samples. It fails when nothing was added.
	Result() (Weights, int, error)
}

// AggregatorByName returns FedAvg or Mean.
func AggregatorByName(name string) (Aggregator, error) {
	switch name {
	case AlgorithmFedAvg:
		return FedAvg{}, nil
	case AlgorithmMean:
		return Mean{}, nil
	default:
		return nil, fmt.Errorf("unknown aggregation algorithm %q (known: %s, %s)", name, AlgorithmFedAvg, AlgorithmMean)
	}
}

// FedAvg is the sample-weighted mean of every layer: sum(n_i·w_i)/sum(n_i).
// When every update reports zero samples it falls back to the plain mean
// rather than dividing by zero.
type FedAvg struct{}

// Name implements Aggregator.
func (FedAvg) Name() string { return AlgorithmFedAvg }

// NewRound implements Aggregator.
func (FedAvg) NewRound() Accumulation { return &weightedSum{weighted: true} }

// Name implements Aggregator.
func (Mean) Name() string { return AlgorithmMean }

// NewRound implements Aggregator.
func (Mean) NewRound() Accumulation { return &weightedSum{} }

// Mean is the unweighted mean of every layer; total_sample is still the sum
// of the contributors' samples.
type Mean struct{}

// weightedSum keeps sum(n_i·w_i) and sum(w_i) in float64, so FedAvg can fall
// back to the mean without keeping the updates.
type weightedSum struct {
	weighted     bool
	count        int
	totalSamples int
	sum          Weights // sum of n_i·w_i (weighted) or of w_i
	plain        Weights // sum of w_i, kept by FedAvg for the zero-sample case
}

func (s *weightedSum) Add(u *Update) {
	if s.sum == nil {
		s.sum = zeroLike(u.Weights)
		if s.weighted {
			s.plain = zeroLike(u.Weights)
		}
	}
	factor := 1.0
	if s.weighted {
		factor = float64(u.NumSamples)
	}
	for i, layer := range u.Weights {
		sum := s.sum[i].Values
		for j, v := range layer.Values {
			sum[j] += factor * v
		}
		if s.weighted {
			plain := s.plain[i].Values
			for j, v := range layer.Values {
				plain[j] += v
			}
		}
	}
	s.count++
	s.totalSamples += u.NumSamples
}

func (s *weightedSum) Result() (Weights, int, error) {
	if s.count == 0 {
		return nil, 0, errors.New("no update to aggregate")
	}
	source, divisor := s.sum, float64(s.count)
	if s.weighted {
		if s.totalSamples > 0 {
			divisor = float64(s.totalSamples)
		} else {
			source = s.plain
		}
	}
	out := zeroLike(source)
	for i, layer := range source {
		for j, v := range layer.Values {
			out[i].Values[j] = v / divisor
		}
	}
	return out, s.totalSamples, nil
}

func zeroLike(w Weights) Weights {
	out := make(Weights, len(w))
	for i, layer := range w {
		out[i] = Layer{Shape: slices.Clone(layer.Shape), Values: make([]float64, len(layer.Values))}
	}
	return out
}

// FedProx (Li et al., 2020) changes only the clients' local objective: each
// adds (mu/2)·||w − w_global||² to its loss, which keeps local models of
// non-IID clients near the global one. The server aggregates as FedAvg. The
// two helpers below are what a trainer needs; the Client passes mu to the
// trainer in TrainRequest.

// ProximalTerm is (mu/2)·||w − global||², to add to a reported loss.
func ProximalTerm(w, global Weights, mu float64) (float64, error) {
	if err := SameShapes(w, global); err != nil {
		return 0, fmt.Errorf("proximal term: %w", err)
	}
	sum := 0.0
	for i := range w {
		for j, v := range w[i].Values {
			d := v - global[i].Values[j]
			sum += d * d
		}
	}
	return mu / 2 * sum, nil
}

// AddProximalGradient adds the gradient of the proximal term, mu·(w −
// global), to grad in place.
func AddProximalGradient(grad, w, global Weights, mu float64) error {
	if err := SameShapes(grad, w); err != nil {
		return fmt.Errorf("proximal gradient: gradient and weights: %w", err)
	}
	if err := SameShapes(w, global); err != nil {
		return fmt.Errorf("proximal gradient: weights and global model: %w", err)
	}
	if mu < 0 || math.IsNaN(mu) {
		return fmt.Errorf("proximal gradient: mu %v must be a non-negative number", mu)
	}
	for i := range grad {
		g := grad[i].Values
		for j, v := range w[i].Values {
			g[j] += mu * (v - global[i].Values[j])
		}
	}
	return nil
}
