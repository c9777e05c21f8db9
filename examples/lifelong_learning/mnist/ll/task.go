package ll

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/pkg/sdk/lifelong"
)

// TaskAttribute is the sample attribute that defines tasks: the rotation of the digit in
// degrees (think of a camera's mounting angle, known for every image it takes).
const TaskAttribute = "rotation"

// Definition is the example's task definition.
var Definition = lifelong.Definition{Attribute: TaskAttribute}

// TaskID names the task of a rotation.
func TaskID(rotation int) string {
	id, _ := Definition.TaskID(map[string]string{TaskAttribute: strconv.Itoa(rotation)}) // never fails for a set attribute
	return id
}

// Arch is every task model's architecture: a 196-128-10 perceptron on 2x2-pooled images.
var Arch = model.Arch{Pool: 2, Hidden: 128}

// TrainOptions train a task model in a few seconds on two cores.
func TrainOptions(seed uint64) model.TrainOptions {
	return model.TrainOptions{Epochs: 8, BatchSize: 32, LearningRate: 0.05, LRDecay: 0.8, Momentum: 0.9, WeightDecay: 1e-4, Seed: seed}
}

// Summary is how a task's training features become its index entry: 50 centroids, radius at
// the 95th percentile of the training distances.
var Summary = lifelong.SummaryOptions{Centroids: 50, Quantile: 0.95, Seed: 1}

// TrainTask trains a fresh model on data and returns it with the task's index entry (model URL
// left to the caller) and its training accuracy.
func TrainTask(id string, rotation int, data model.Dataset, seed uint64) (*model.Model, kb.Task, error) {
	m, err := model.New(Arch, seed)
	if err != nil {
		return nil, kb.Task{}, err
	}
	if _, err := m.Train(data, TrainOptions(seed)); err != nil {
		return nil, kb.Task{}, fmt.Errorf("training task %s: %w", id, err)
	}
	classes := make([]string, model.Classes)
	for c := range classes {
		classes[c] = strconv.Itoa(c)
	}
	accuracy, _ := m.Evaluate(data)
	task, err := lifelong.Summarise(id, map[string]string{TaskAttribute: strconv.Itoa(rotation)},
		kb.Model{Format: "smnistm", Metrics: map[string]float64{"train_accuracy": accuracy}, Classes: classes},
		DatasetFeatures(data), Summary)
	if err != nil {
		return nil, kb.Task{}, err
	}
	return m, task, nil
}

// Subset returns the images of data at indices.
func Subset(data model.Dataset, indices []int) model.Dataset {
	out := model.Dataset{Pixels: make([]uint8, 0, len(indices)*model.Pixels), Labels: make([]uint8, 0, len(indices))}
	for _, i := range indices {
		out.Pixels = append(out.Pixels, data.Pixels[i*model.Pixels:(i+1)*model.Pixels]...)
		out.Labels = append(out.Labels, data.Labels[i])
	}
	return out
}

// Concat joins datasets.
func Concat(parts ...model.Dataset) model.Dataset {
	var out model.Dataset
	for _, part := range parts {
		out.Pixels = append(out.Pixels, part.Pixels...)
		out.Labels = append(out.Labels, part.Labels...)
	}
	return out
}

// Shuffle returns a seeded permutation of 0..n-1.
func Shuffle(n int, seed uint64) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x11))
	rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	return order
}
