package il

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	sdk "github.com/sedna-go/sedna/pkg/sdk/incrementallearning"
)

const (
	// ModelFile is the trained model's name in the train worker's output directory.
	ModelFile = "model.smnistm"
	// LineageFile lists, next to a model, every sample it was trained on, so the next round can
	// train on the old samples and the new ones (a model's training set travels with it).
	LineageFile = "train.txt"
	// ModelFormat is the Model format the workers report.
	ModelFormat = "smnistm"
)

// Arch is the example's model: 2x2-pooled 14x14 input, 64 ReLU units, 10 classes.
var Arch = model.Arch{Pool: 2, Hidden: 64}

// TrainOptions are the settings every training in the example uses (initial model and rounds).
func TrainOptions() model.TrainOptions {
	return model.TrainOptions{Epochs: 15, BatchSize: 32, LearningRate: 0.05, LRDecay: 0.85, Momentum: 0.9, WeightDecay: 1e-4, Seed: 1}
}

// TrainResult is what one training round produced.
type TrainResult struct {
	ModelPath   string
	BaseSamples int
	NewSamples  int
	// TrainAccuracy is the accuracy on the training samples after training.
	TrainAccuracy float64
}

// TrainRound is the train worker's work: start from the base model's weights and train on the
// samples the base model was trained on (its lineage file, if any) plus the round's new samples;
// write the model and its lineage to outputDir.
func TrainRound(store *Store, baseModelPath, trainDataPath, outputDir string) (TrainResult, error) {
	result := TrainResult{ModelPath: filepath.Join(outputDir, ModelFile)}
	m, err := model.Load(baseModelPath)
	if err != nil {
		return result, fmt.Errorf("base model: %w", err)
	}
	lineage, err := ReadIndex(filepath.Join(filepath.Dir(baseModelPath), LineageFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return result, fmt.Errorf("base model's training samples: %w", err)
	}
	fresh, err := ReadIndex(trainDataPath)
	if err != nil {
		return result, fmt.Errorf("training data: %w", err)
	}
	if len(fresh) == 0 {
		return result, fmt.Errorf("training data %s lists no samples", trainDataPath)
	}
	all := append(append([]Sample(nil), lineage...), fresh...)
	data, err := store.Load(all)
	if err != nil {
		return result, fmt.Errorf("loading the training samples: %w", err)
	}
	if _, err := m.Train(data, TrainOptions()); err != nil {
		return result, err
	}
	result.BaseSamples, result.NewSamples = len(lineage), len(fresh)
	result.TrainAccuracy, _ = m.Evaluate(data)
	if err := os.MkdirAll(outputDir, 0o755); err != nil {
		return result, fmt.Errorf("creating the output directory: %w", err)
	}
	if err := m.Save(result.ModelPath); err != nil {
		return result, err
	}
	if err := WriteIndex(filepath.Join(outputDir, LineageFile), all); err != nil {
		return result, err
	}
	return result, nil
}

// EvalModels is the eval worker's work: the accuracy and mean cross entropy of every model on the
// samples of the test index, one result per model in the given order (the LC compares the first,
// the trained model, with the second, the deployed one: metric accuracy_delta).
func EvalModels(store *Store, modelPaths []string, testDataPath string) ([]sdk.EvalResult, error) {
	samples, err := ReadIndex(testDataPath)
	if err != nil {
		return nil, fmt.Errorf("test data: %w", err)
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("test data %s lists no samples", testDataPath)
	}
	data, err := store.Load(samples)
	if err != nil {
		return nil, fmt.Errorf("loading the test samples: %w", err)
	}
	results := make([]sdk.EvalResult, 0, len(modelPaths))
	for _, path := range modelPaths {
		m, err := model.Load(path)
		if err != nil {
			return nil, err
		}
		accuracy, loss := m.Evaluate(data)
		results = append(results, sdk.EvalResult{Format: ModelFormat, URL: path, Metrics: map[string]any{
			"accuracy": []float64{accuracy},
			"loss":     []float64{loss},
		}})
	}
	return results, nil
}

// DatasetDir is the directory sample references are relative to: explicit if set, else the
// directory of ORIGINAL_DATASET_URL (the Dataset's index, mounted by GM).
func DatasetDir(explicit, originalDatasetURL string) (string, error) {
	switch {
	case explicit != "":
		return explicit, nil
	case originalDatasetURL != "":
		return filepath.Dir(originalDatasetURL), nil
	}
	return "", errors.New("no dataset directory: ORIGINAL_DATASET_URL is not set and --dataset-dir is not given")
}

// ResolveHotUpdatePath finds a deployed model. The LC writes model_path as the container sees it
// (/model-hot-update/<file>) and copies the model next to model_config.json; where that path does
// not exist as written (a process that cannot mount, as on the local harness), the file of the
// same name beside the config is the model.
func ResolveHotUpdatePath(modelPath, configPath string) string {
	if _, err := os.Stat(modelPath); !errors.Is(err, fs.ErrNotExist) || configPath == "" {
		return modelPath
	}
	return filepath.Join(filepath.Dir(configPath), filepath.Base(modelPath))
}

// modelFile accepts a model URL that names the model's directory.
func modelFile(url string) string {
	if info, err := os.Stat(url); err == nil && info.IsDir() {
		return filepath.Join(url, ModelFile)
	}
	return url
}

// TrainFunc is the train worker's function for incrementallearning.Worker.Train. datasetDir and
// mnistDir are as for DatasetDir and Store.
func TrainFunc(ctx context.Context, datasetDir, mnistDir string) func(sdk.TrainInput) (sdk.TrainOutput, error) {
	return func(in sdk.TrainInput) (sdk.TrainOutput, error) {
		root, err := DatasetDir(datasetDir, in.OriginalDatasetURL)
		if err != nil {
			return sdk.TrainOutput{}, err
		}
		base := modelFile(in.BaseModelURL)
		started := time.Now()
		result, err := TrainRound(NewStore(root, mnistDir), base, in.TrainDatasetURL, in.OutputDir)
		if err != nil {
			return sdk.TrainOutput{}, err
		}
		klog.FromContext(ctx).Info("Trained", "model", result.ModelPath, "base", base, "baseSamples", result.BaseSamples,
			"newSamples", result.NewSamples, "trainAccuracy", result.TrainAccuracy, "duration", time.Since(started))
		return sdk.TrainOutput{Models: []sdk.Model{{Format: ModelFormat, URL: result.ModelPath, Metrics: map[string]any{
			"train_accuracy": []float64{result.TrainAccuracy},
			"num_of_samples": []float64{float64(result.BaseSamples + result.NewSamples)},
		}}}}, nil
	}
}

// EvalFunc is the eval worker's function for incrementallearning.Worker.Eval: one result per model
// of MODEL_URLS, in that order, with the URLs as given.
func EvalFunc(ctx context.Context, datasetDir, mnistDir string) func(sdk.EvalInput) ([]sdk.EvalResult, error) {
	return func(in sdk.EvalInput) ([]sdk.EvalResult, error) {
		root, err := DatasetDir(datasetDir, in.OriginalDatasetURL)
		if err != nil {
			return nil, err
		}
		paths := make([]string, len(in.ModelURLs))
		for i, url := range in.ModelURLs {
			paths[i] = modelFile(url)
		}
		results, err := EvalModels(NewStore(root, mnistDir), paths, in.TestDatasetURL)
		if err != nil {
			return nil, err
		}
		for i := range results {
			results[i].URL = in.ModelURLs[i]
			klog.FromContext(ctx).Info("Evaluated", "model", in.ModelURLs[i], "metrics", results[i].Metrics)
		}
		return results, nil
	}
}
