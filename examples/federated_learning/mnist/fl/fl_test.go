package fl

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/federated"
)

func TestSplitIsNonIIDAndCoversEveryImage(t *testing.T) {
	// Ten images of each digit, in digit order.
	var labels []uint8
	for digit := range model.Classes {
		for range 10 {
			labels = append(labels, uint8(digit))
		}
	}
	split := Split(labels)
	seen := map[int]int{}
	for node, images := range split {
		digits := map[uint8]bool{}
		for _, i := range images {
			seen[i]++
			digits[labels[i]] = true
		}
		require.Len(t, digits, 4, "node %d", node)
		for _, class := range NodeClasses[node] {
			require.True(t, digits[uint8(class)], "node %d lacks digit %d", node, class)
		}
	}
	require.Len(t, seen, len(labels), "every image goes to a node")
	for i, n := range seen {
		require.Equal(t, 1, n, "image %d", i)
	}
	// The shared digits 3 and 7 are halved; the others stay whole.
	require.Len(t, split[0], 35)
	require.Len(t, split[1], 35)
	require.Len(t, split[2], 30)
	table := SplitTable(labels, split)
	require.Contains(t, table, "edge-node-3")
	node, ok := NodeOf([]int{3, 7, 8, 9})
	require.True(t, ok)
	require.Equal(t, 2, node)
	_, ok = NodeOf([]int{0, 1})
	require.False(t, ok)
}

func TestWeightsRoundTripAndLocalTraining(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Arch = model.Arch{Pool: 4, Hidden: 8}
	m, err := cfg.NewModel()
	require.NoError(t, err)
	w := ToWeights(m)
	require.NoError(t, w.Validate())
	back, err := cfg.ModelFrom(w)
	require.NoError(t, err)
	require.Equal(t, w, ToWeights(back))
	require.Error(t, SetWeights(back, w[:2]))

	// A few images of two digits: local training moves the weights and
	// keeps the shapes; round 1 trains on the second slice.
	data := model.Dataset{Pixels: make([]uint8, 8*model.Pixels), Labels: []uint8{0, 1, 0, 1, 0, 1, 0, 1}}
	for i := range data.Pixels {
		data.Pixels[i] = uint8(i * 7)
	}
	require.Equal(t, 4, Slice(data, 1, 2).Len())
	require.Equal(t, data.Labels[4:], Slice(data, 1, 2).Labels)
	trainer := &LocalTrainer{Config: cfg, Node: 0, Data: data}
	result, err := trainer.Train(context.Background(), federated.TrainRequest{Round: 1, Global: w.Clone()})
	require.NoError(t, err)
	require.Equal(t, 8, result.NumSamples)
	require.NoError(t, result.Weights.Validate())
	require.NotEqual(t, w, result.Weights)
	_, err = (&LocalTrainer{Config: cfg}).Train(context.Background(), federated.TrainRequest{})
	require.ErrorContains(t, err, "no training images")
	cfg.LocalParts = 0
	require.Error(t, cfg.Validate())
}
