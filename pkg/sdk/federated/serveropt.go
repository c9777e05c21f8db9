package federated

import (
	"fmt"
	"math"
)

// ServerOptimizer is the server-side update of FedAvgM (Hsu et al., 2019,
// "Measuring the effects of non-identical data distribution for federated
// visual classification"): the round's aggregate is treated as a pseudo
// gradient step Δ = aggregate − global from the current global model, the
// server keeps a velocity v ← Momentum·v + Δ, and the next global model is
// global + LR·v. Momentum damps the client drift of non-IID rounds (each
// round's Δ points towards the classes its clients saw, the velocity keeps
// the direction common to the rounds), a server LR above one extrapolates
// the averaged step.
//
// The zero value, like LR 1 with Momentum 0, is plain FedAvg: the aggregate
// itself becomes the global model, bit for bit. The velocity is part of the
// checkpoint, so a restarted server continues with the same state.
type ServerOptimizer struct {
	// LR is the server learning rate η; 0 means 1.
	LR float64
	// Momentum is β in [0, 1); 0 keeps no velocity.
	Momentum float64
}

// Validate refuses a learning rate that is negative or not finite and a
// momentum outside [0, 1).
func (o ServerOptimizer) Validate() error {
	if o.LR < 0 || math.IsNaN(o.LR) || math.IsInf(o.LR, 0) {
		return fmt.Errorf("server learning rate %v must be a finite number > 0 (0 means 1)", o.LR)
	}
	if !(o.Momentum >= 0 && o.Momentum < 1) {
		return fmt.Errorf("server momentum %v must be in [0, 1)", o.Momentum)
	}
	return nil
}

// Plain reports whether the optimizer is plain FedAvg (the aggregate is the
// next global model).
func (o ServerOptimizer) Plain() bool {
	return (o.LR == 0 || o.LR == 1) && o.Momentum == 0
}

func (o ServerOptimizer) lr() float64 {
	if o.LR == 0 {
		return 1
	}
	return o.LR
}

// Step returns the next global model and velocity from the current global
// model, the round's aggregate and the velocity so far (nil is zero). The
// inputs are not changed. A plain optimizer returns aggregate and nil.
func (o ServerOptimizer) Step(global, aggregate, velocity Weights) (Weights, Weights, error) {
	if o.Plain() {
		return aggregate, nil, nil
	}
	if err := SameShapes(aggregate, global); err != nil {
		return nil, nil, fmt.Errorf("server optimizer: aggregate and global model: %w", err)
	}
	if velocity != nil {
		if err := SameShapes(velocity, global); err != nil {
			return nil, nil, fmt.Errorf("server optimizer: velocity and global model: %w", err)
		}
	}
	next, nextVelocity := zeroLike(global), zeroLike(global)
	lr := o.lr()
	for i := range global {
		g, a, nv, nx := global[i].Values, aggregate[i].Values, nextVelocity[i].Values, next[i].Values
		for j := range g {
			v := a[j] - g[j]
			if velocity != nil {
				v += o.Momentum * velocity[i].Values[j]
			}
			nv[j] = v
			nx[j] = g[j] + lr*v
		}
	}
	if o.Momentum == 0 {
		nextVelocity = nil
	}
	return next, nextVelocity, nil
}
