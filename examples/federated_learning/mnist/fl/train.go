package fl

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/federated"
)

// Config is the example's model and training schedule, shared by the
// trainer program and the measurement so that their numbers agree.
type Config struct {
	Arch model.Arch
	// Rounds is the aggregator's exit round.
	Rounds int
	// LocalEpochs is the number of passes over the round's slice of a
	// node's data.
	LocalEpochs int
	// LocalParts cuts a node's data into this many slices; round r trains
	// on slice r mod LocalParts. Short local training keeps the nodes'
	// models from drifting apart on non-IID data (1: all of it every round).
	LocalParts   int
	BatchSize    int
	LearningRate float64
	// RoundDecay multiplies the learning rate of round r's local training
	// by RoundDecay^r (1: constant); smaller late steps let the nodes'
	// models drift apart less.
	RoundDecay  float64
	Momentum    float64
	WeightDecay float64
	// InitSeed draws the initial model, the same on every node.
	InitSeed uint64
	// ServerLR and ServerMomentum are the aggregator's server optimizer
	// (federated.ServerOptimizer, FedAvgM; SEDNA_AGG_SERVER_LR and
	// SEDNA_AGG_SERVER_MOMENTUM in the YAML): 1 and 0 are plain FedAvg.
	ServerLR       float64
	ServerMomentum float64
}

// ServerOptimizer is the aggregator's server optimizer of this
// configuration.
func (c Config) ServerOptimizer() federated.ServerOptimizer {
	return federated.ServerOptimizer{LR: c.ServerLR, Momentum: c.ServerMomentum}
}

// DefaultConfig is what the example's YAML runs.
func DefaultConfig() Config {
	return Config{Arch: model.Arch{Pool: 2, Hidden: 64}, Rounds: 20, LocalEpochs: 1, LocalParts: 2, BatchSize: 64, LearningRate: 0.1, RoundDecay: 0.85,
		Momentum: 0.9, WeightDecay: 1e-4, InitSeed: 7, ServerLR: 1.5, ServerMomentum: 0.7}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Rounds < 1 || c.LocalEpochs < 1 || c.LocalParts < 1 || c.BatchSize < 1 || !(c.LearningRate > 0) || !(c.RoundDecay > 0 && c.RoundDecay <= 1) || c.Momentum < 0 || c.Momentum >= 1 || c.WeightDecay < 0 {
		return fmt.Errorf("invalid training configuration %+v", c)
	}
	if err := c.ServerOptimizer().Validate(); err != nil {
		return fmt.Errorf("invalid training configuration: %w", err)
	}
	return nil
}

// NewModel returns the initial model.
func (c Config) NewModel() (*model.Model, error) { return model.New(c.Arch, c.InitSeed) }

// TrainOptions are the SGD settings of one local round; the seed depends on
// the round and the node, so every run of the example trains alike.
func (c Config) TrainOptions(epochs int, round, node int) model.TrainOptions {
	return model.TrainOptions{Epochs: epochs, BatchSize: c.BatchSize, LearningRate: c.LearningRate * math.Pow(c.RoundDecay, float64(round)), LRDecay: 1,
		Momentum: c.Momentum, WeightDecay: c.WeightDecay, Seed: uint64(1000*round + node + 1)}
}

// ToWeights converts a model to what federated learning exchanges.
func ToWeights(m *model.Model) federated.Weights {
	tensors := m.Tensors()
	w := make(federated.Weights, len(tensors))
	for i, t := range tensors {
		w[i] = federated.Layer{Shape: t.Shape, Values: t.Values}
	}
	return w
}

// SetWeights loads w into m.
func SetWeights(m *model.Model, w federated.Weights) error {
	tensors := make([]model.Tensor, len(w))
	for i, layer := range w {
		tensors[i] = model.Tensor{Shape: layer.Shape, Values: layer.Values}
	}
	return m.SetTensors(tensors)
}

// ModelFrom returns a model of c's architecture holding w.
func (c Config) ModelFrom(w federated.Weights) (*model.Model, error) {
	m, err := c.NewModel()
	if err != nil {
		return nil, err
	}
	if err := SetWeights(m, w); err != nil {
		return nil, err
	}
	return m, nil
}

// Accuracy is w's accuracy on data.
func (c Config) Accuracy(w federated.Weights, data model.Dataset) (float64, error) {
	m, err := c.ModelFrom(w)
	if err != nil {
		return 0, err
	}
	accuracy, _ := m.Evaluate(data)
	return accuracy, nil
}

// LocalTrainer trains one node's share for pkg/sdk/federated's Client.
type LocalTrainer struct {
	Config Config
	Node   int
	Data   model.Dataset
}

var _ federated.Trainer = (*LocalTrainer)(nil)

// Train runs LocalEpochs of SGD on the node's data from the global model.
func (t *LocalTrainer) Train(ctx context.Context, req federated.TrainRequest) (federated.TrainResult, error) {
	if t.Data.Len() == 0 {
		return federated.TrainResult{}, errors.New("the node has no training images")
	}
	m, err := t.Config.NewModel()
	if err != nil {
		return federated.TrainResult{}, err
	}
	if req.Global != nil {
		if err := SetWeights(m, req.Global); err != nil {
			return federated.TrainResult{}, fmt.Errorf("loading the global model of round %d: %w", req.Round, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return federated.TrainResult{}, err
	}
	if _, err := m.Train(Slice(t.Data, req.Round, t.Config.LocalParts), t.Config.TrainOptions(t.Config.LocalEpochs, req.Round, t.Node)); err != nil {
		return federated.TrainResult{}, fmt.Errorf("training round %d: %w", req.Round+1, err)
	}
	return federated.TrainResult{Weights: ToWeights(m), NumSamples: t.Data.Len()}, nil
}

// Slice is the part of data round trains on: slice round mod parts of parts
// equal slices.
func Slice(data model.Dataset, round, parts int) model.Dataset {
	if parts <= 1 {
		return data
	}
	i := round % parts
	from, to := i*data.Len()/parts, (i+1)*data.Len()/parts
	return model.Dataset{Pixels: data.Pixels[from*model.Pixels : to*model.Pixels], Labels: data.Labels[from:to]}
}
