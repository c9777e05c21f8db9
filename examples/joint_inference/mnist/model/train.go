package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// TrainOptions configures minibatch SGD with momentum.
type TrainOptions struct {
	Epochs       int
	BatchSize    int
	LearningRate float64
	// LRDecay multiplies the learning rate after every epoch (1 = constant).
	LRDecay  float64
	Momentum float64
	// WeightDecay is the L2 penalty on weights (not biases).
	WeightDecay float64
	// Seed drives the shuffling; the same seed, data and model give the
	// same weights.
	Seed uint64
	// EpochDone, if set, is called after every epoch with the mean training
	// loss of that epoch.
	EpochDone func(epoch int, loss float64)
}

// DefaultTrainOptions returns settings that train both example models on
// the full training set in well under a minute each on two cores.
func DefaultTrainOptions(arch Arch) TrainOptions {
	opts := TrainOptions{Epochs: 6, BatchSize: 64, LearningRate: 0.05, LRDecay: 0.7, Momentum: 0.9, WeightDecay: 1e-4, Seed: 1}
	if arch.Hidden == 0 {
		opts.Epochs = 3
		opts.LearningRate = 0.1
	}
	return opts
}

// Train fits the model to data and returns the mean loss of every epoch.
func (m *Model) Train(data Dataset, opts TrainOptions) ([]float64, error) {
	if data.Len() == 0 {
		return nil, errors.New("training: no images")
	}
	if opts.Epochs < 1 || opts.BatchSize < 1 || !(opts.LearningRate > 0) || opts.Momentum < 0 || opts.Momentum >= 1 {
		return nil, fmt.Errorf("training: invalid options %+v", opts)
	}
	if opts.LRDecay <= 0 {
		opts.LRDecay = 1
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x7a11))
	order := make([]int, data.Len())
	for i := range order {
		order[i] = i
	}
	net := newTrainer(m)
	lr := opts.LearningRate
	var losses []float64
	for epoch := 0; epoch < opts.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var total float64
		for start := 0; start < len(order); start += opts.BatchSize {
			batch := order[start:min(start+opts.BatchSize, len(order))]
			total += net.step(data, batch, lr, opts) * float64(len(batch))
		}
		loss := total / float64(len(order))
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return losses, fmt.Errorf("training diverged in epoch %d (loss %v): lower the learning rate", epoch+1, loss)
		}
		losses = append(losses, loss)
		if opts.EpochDone != nil {
			opts.EpochDone(epoch+1, loss)
		}
		lr *= opts.LRDecay
	}
	return losses, nil
}

// trainer holds gonum views of the model's weights and the momentum state.
type trainer struct {
	m        *Model
	weights  []*mat.Dense
	velocity []*mat.Dense
	biasVel  [][]float64
	image    []float64
}

func newTrainer(m *Model) *trainer {
	t := &trainer{m: m, image: make([]float64, Pixels)}
	for _, l := range m.layers {
		t.weights = append(t.weights, mat.NewDense(l.in, l.out, l.W))
		t.velocity = append(t.velocity, mat.NewDense(l.in, l.out, nil))
		t.biasVel = append(t.biasVel, make([]float64, l.out))
	}
	return t
}

// step runs one SGD step on the batch and returns its mean loss.
func (t *trainer) step(data Dataset, batch []int, lr float64, opts TrainOptions) float64 {
	n := len(batch)
	inputs := t.m.arch.Inputs()
	x := mat.NewDense(n, inputs, nil)
	for row, index := range batch {
		data.imageInto(index, t.image)
		pool(t.image, t.m.arch.Pool, x.RawRowView(row))
	}
	// Forward, keeping every layer's activations.
	activations := []*mat.Dense{x}
	for index, l := range t.m.layers {
		var out mat.Dense
		out.Mul(activations[index], t.weights[index])
		for row := 0; row < n; row++ {
			values := out.RawRowView(row)
			for j := range values {
				values[j] += l.B[j]
				if index < len(t.m.layers)-1 {
					values[j] = max(values[j], 0)
				}
			}
		}
		activations = append(activations, &out)
	}
	// Softmax and the gradient of the mean cross entropy w.r.t. the logits.
	probs := activations[len(activations)-1]
	var loss float64
	for row, index := range batch {
		values := probs.RawRowView(row)
		softmaxInPlace(values)
		label := int(data.Labels[index])
		loss -= math.Log(max(values[label], 1e-12))
		values[label]--
		for j := range values {
			values[j] /= float64(n)
		}
	}
	// Backward: grad holds dLoss/d(pre-activation output) of layer index.
	grad := probs
	for index := len(t.m.layers) - 1; index >= 0; index-- {
		l := t.m.layers[index]
		var weightGrad mat.Dense
		weightGrad.Mul(activations[index].T(), grad)
		var inputGrad mat.Dense
		if index > 0 {
			inputGrad.Mul(grad, t.weights[index].T())
			// ReLU: no gradient where the hidden unit was off.
			hidden := activations[index]
			for row := 0; row < n; row++ {
				g, h := inputGrad.RawRowView(row), hidden.RawRowView(row)
				for j := range g {
					if h[j] <= 0 {
						g[j] = 0
					}
				}
			}
		}
		// Momentum update of the weights (with L2) and biases.
		// The Dense views share l.W, and both are contiguous (stride = out).
		velocity, gradients := t.velocity[index].RawMatrix().Data, weightGrad.RawMatrix().Data
		for i, w := range l.W {
			velocity[i] = opts.Momentum*velocity[i] - lr*(gradients[i]+opts.WeightDecay*w)
			l.W[i] = w + velocity[i]
		}
		for j := range l.B {
			var sum float64
			for row := 0; row < n; row++ {
				sum += grad.At(row, j)
			}
			t.biasVel[index][j] = opts.Momentum*t.biasVel[index][j] - lr*sum
			l.B[j] += t.biasVel[index][j]
		}
		if index > 0 {
			grad = &inputGrad
		}
	}
	return loss / float64(n)
}

// Evaluate returns the accuracy and mean cross entropy on data.
func (m *Model) Evaluate(data Dataset) (accuracy, loss float64) {
	if data.Len() == 0 {
		return 0, 0
	}
	image := make([]float64, Pixels)
	features := make([]float64, m.arch.Inputs())
	correct := 0
	for i := 0; i < data.Len(); i++ {
		data.imageInto(i, image)
		pool(image, m.arch.Pool, features)
		probs := m.forward(features)
		label := int(data.Labels[i])
		if argmax(probs) == label {
			correct++
		}
		loss -= math.Log(max(probs[label], 1e-12))
	}
	return float64(correct) / float64(data.Len()), loss / float64(data.Len())
}
