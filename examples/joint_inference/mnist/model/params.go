package model

import "fmt"

// Tensor is one parameter tensor of a model: a dense layer's weights (shape
// [inputs, outputs], row-major) or biases (shape [outputs]).
type Tensor struct {
	Shape  []int
	Values []float64
}

// Tensors returns copies of the model's parameters, weights then biases of
// every dense layer in order (what federated learning exchanges).
func (m *Model) Tensors() []Tensor {
	var out []Tensor
	for _, l := range m.layers {
		out = append(out,
			Tensor{Shape: []int{l.in, l.out}, Values: append([]float64(nil), l.W...)},
			Tensor{Shape: []int{l.out}, Values: append([]float64(nil), l.B...)})
	}
	return out
}

// SetTensors replaces the model's parameters with copies of tensors, which
// must have the shapes Tensors returns.
func (m *Model) SetTensors(tensors []Tensor) error {
	if len(tensors) != 2*len(m.layers) {
		return fmt.Errorf("setting the parameters of %s: %d tensors, want %d", m.arch, len(tensors), 2*len(m.layers))
	}
	for i, l := range m.layers {
		w, b := tensors[2*i], tensors[2*i+1]
		if len(w.Shape) != 2 || w.Shape[0] != l.in || w.Shape[1] != l.out || len(w.Values) != len(l.W) {
			return fmt.Errorf("setting the parameters of %s: layer %d weights have shape %v, want [%d %d]", m.arch, i+1, w.Shape, l.in, l.out)
		}
		if len(b.Shape) != 1 || b.Shape[0] != l.out || len(b.Values) != len(l.B) {
			return fmt.Errorf("setting the parameters of %s: layer %d biases have shape %v, want [%d]", m.arch, i+1, b.Shape, l.out)
		}
	}
	for i, l := range m.layers {
		copy(l.W, tensors[2*i].Values)
		copy(l.B, tensors[2*i+1].Values)
	}
	return nil
}
