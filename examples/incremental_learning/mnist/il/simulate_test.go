package il

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// TestSimulationImprovesTheModel runs the whole loop at a small scale on real MNIST: the served
// model must get better on held-out test images, through deployments the eval stage approved.
func TestSimulationImprovesTheModel(t *testing.T) {
	mnistDir, err := model.DefaultMNISTDir()
	require.NoError(t, err)
	config := SimulationConfig{Initial: InitialSetup{Size: 300}, StreamStart: 10000, StreamPerRound: 800, Rounds: 2,
		Threshold: 0.7, TrainProb: 0.8, TrainTrigger: 50, TestLimit: 2000}
	var seen []RoundResult
	result, err := Simulate(context.Background(), mnistDir, t.TempDir(), config, func(r RoundResult) { seen = append(seen, r) })
	require.NoError(t, err)
	require.Equal(t, 2000, result.TestImages)
	require.Len(t, result.Rounds, 2)
	require.Equal(t, result.Rounds, seen)
	for _, round := range result.Rounds {
		t.Logf("%+v", round)
		require.Equal(t, 800, round.Streamed)
		require.Positive(t, round.Hard)
		require.Equal(t, round.Hard, round.Labelled, "every streamed image is a training image, so every one gets a label")
		require.Positive(t, round.TrainSamples)
		require.Positive(t, round.EvalSamples)
	}
	require.True(t, result.Rounds[0].Deployed)
	last := result.Rounds[len(result.Rounds)-1]
	require.Greater(t, last.TestAccuracy, result.InitialAccuracy+0.03, "initial %.4f, after %d rounds %.4f", result.InitialAccuracy, len(result.Rounds), last.TestAccuracy)
}
