package il

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	sdk "github.com/sedna-go/sedna/pkg/sdk/incrementallearning"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

type recordingReporter struct{ messages []lc.Message }

func (r *recordingReporter) Report(_ context.Context, msg lc.Message) error {
	r.messages = append(r.messages, msg)
	return nil
}

// bandImage is a learnable toy image: label k lights rows 2k and 2k+1 (and variant shifts the
// brightness a little).
func bandImage(label, variant int) []uint8 {
	pixels := make([]uint8, model.Pixels)
	for y := 2 * label; y < 2*label+2; y++ {
		for x := 4; x < 24; x++ {
			pixels[y*model.Side+x] = uint8(200 + variant)
		}
	}
	return pixels
}

// writeBandSamples files count PNG samples per label in dir/sub and returns their index lines.
func writeBandSamples(t *testing.T, dir, sub string, count int) []Sample {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, sub), 0o755))
	var samples []Sample
	for label := 0; label < model.Classes; label++ {
		for variant := 0; variant < count; variant++ {
			content, err := EncodePNG(bandImage(label, variant))
			require.NoError(t, err)
			name := fmt.Sprintf("%s/%d-%d.png", sub, label, variant)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), content, 0o644))
			samples = append(samples, Sample{Ref: name, Label: label})
		}
	}
	return samples
}

// decodeLikeTheLC reads a report's metrics as the LC's deploy stats do: every metric a list of
// numbers (or a number).
func decodeLikeTheLC(t *testing.T, result any) map[string][]float64 {
	t.Helper()
	encoded, err := json.Marshal(result)
	require.NoError(t, err)
	var decoded struct {
		Metrics map[string][]float64 `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal(encoded, &decoded))
	return decoded.Metrics
}

func TestTrainAndEvalWorkersReportWhatTheLCReads(t *testing.T) {
	ctx := context.Background()
	dataset := t.TempDir()
	index := filepath.Join(dataset, "index.txt")
	require.NoError(t, WriteIndex(index, nil))
	// The base model knows labels 0-4 only (its lineage); the round brings 5-9.
	all := writeBandSamples(t, dataset, "hard-examples", 3)
	var old, fresh []Sample
	for _, s := range all {
		if s.Label < 5 {
			old = append(old, s)
		} else {
			fresh = append(fresh, s)
		}
	}
	baseDir := filepath.Join(t.TempDir(), "initial")
	basePath, err := TrainInitial(NewStore(dataset, ""), old, baseDir)
	require.NoError(t, err)
	out := t.TempDir()
	trainData := filepath.Join(out, "data", "train", "1", "data.txt")
	require.NoError(t, os.MkdirAll(filepath.Dir(trainData), 0o755))
	require.NoError(t, WriteIndex(trainData, fresh))

	reporter := &recordingReporter{}
	worker, err := sdk.NewWorker(sdk.Options{Reporter: reporter, Env: env.New(env.MapLookup(map[string]string{
		"WORKER_NAME": "train-worker-x", "JOB_NAME": "mnist-il", "NAMESPACE": "default",
		sdk.EnvBaseModelURL: baseDir, env.ModelURL: filepath.Join(out, "train", "1"),
		sdk.EnvTrainDatasetURL: trainData, sdk.EnvOriginalDatasetURL: index,
	}))})
	require.NoError(t, err)
	require.NoError(t, worker.Train(ctx, TrainFunc(ctx, "", "")))
	require.Len(t, reporter.messages, 1)
	trainMsg := reporter.messages[0]
	require.Equal(t, "train", trainMsg.Kind)
	require.Equal(t, "completed", trainMsg.Status)
	results := trainMsg.Results.([]map[string]any)
	require.Len(t, results, 1)
	trainedPath := filepath.Join(out, "train", "1", ModelFile)
	require.Equal(t, trainedPath, results[0]["url"])
	require.Equal(t, ModelFormat, results[0]["format"])
	require.Equal(t, []float64{30}, decodeLikeTheLC(t, results[0])["num_of_samples"])
	lineage, err := ReadIndex(filepath.Join(out, "train", "1", LineageFile))
	require.NoError(t, err)
	require.Equal(t, append(append([]Sample(nil), old...), fresh...), lineage, "the next round trains on both")

	// Eval: trained first, then the deployed (initial) model, on all labels.
	testData := filepath.Join(out, "data", "eval", "1", "data.txt")
	require.NoError(t, os.MkdirAll(filepath.Dir(testData), 0o755))
	require.NoError(t, WriteIndex(testData, all))
	reporter.messages = nil
	worker, err = sdk.NewWorker(sdk.Options{Reporter: reporter, Env: env.New(env.MapLookup(map[string]string{
		"WORKER_NAME": "eval-worker-x", "JOB_NAME": "mnist-il",
		sdk.EnvModelURLs: trainedPath + ";" + basePath, sdk.EnvTestDatasetURL: testData, sdk.EnvOriginalDatasetURL: index,
	}))})
	require.NoError(t, err)
	require.NoError(t, worker.Eval(ctx, EvalFunc(ctx, "", "")))
	require.Len(t, reporter.messages, 1)
	results = reporter.messages[0].Results.([]map[string]any)
	require.Len(t, results, 2)
	require.Equal(t, trainedPath, results[0]["url"])
	require.Equal(t, basePath, results[1]["url"])
	trained, deployed := decodeLikeTheLC(t, results[0]), decodeLikeTheLC(t, results[1])
	require.Equal(t, []float64{1}, trained["accuracy"], "the trained model knows every band")
	require.InDelta(t, 0.5, deployed["accuracy"][0], 0.01, "the initial model knows half the labels")
	require.Contains(t, trained, "loss")
}

func TestTrainRoundFailures(t *testing.T) {
	dataset := t.TempDir()
	samples := writeBandSamples(t, dataset, "h", 1)
	base, err := TrainInitial(NewStore(dataset, ""), samples, filepath.Join(t.TempDir(), "base"))
	require.NoError(t, err)
	empty := filepath.Join(t.TempDir(), "data.txt")
	require.NoError(t, WriteIndex(empty, nil))
	_, err = TrainRound(NewStore(dataset, ""), base, empty, t.TempDir())
	require.ErrorContains(t, err, "lists no samples")
	missing := filepath.Join(t.TempDir(), "data.txt")
	require.NoError(t, WriteIndex(missing, []Sample{{"h/nope.png", 1}}))
	_, err = TrainRound(NewStore(dataset, ""), base, missing, t.TempDir())
	require.ErrorContains(t, err, "h/nope.png")
	_, err = TrainRound(NewStore(dataset, ""), filepath.Join(dataset, "h", "0-0.png"), missing, t.TempDir())
	require.ErrorIs(t, err, model.ErrBadModelFile)
	_, err = DatasetDir("", "")
	require.ErrorContains(t, err, "ORIGINAL_DATASET_URL")
}
