package il

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
	sdk "github.com/sedna-go/sedna/pkg/sdk/incrementallearning"
)

// InitialSetup says which MNIST training images the initial model learns from.
type InitialSetup struct {
	// Size is how many images: the first Size training images.
	Size int
}

// InitialSamples are the references of the initial training images, relative to the dataset
// directory (MNIST files in its mnist/ subdirectory).
func InitialSamples(train model.Dataset, setup InitialSetup) []Sample {
	n := min(setup.Size, train.Len())
	samples := make([]Sample, 0, n)
	for i := 0; i < n; i++ {
		samples = append(samples, Sample{Ref: fmt.Sprintf("%s/%s:%d", MNISTSubdir, TrainImagesFile, i), Label: int(train.Labels[i])})
	}
	return samples
}

// TrainInitial trains the initial model on samples and writes it with its lineage to dir.
func TrainInitial(store *Store, samples []Sample, dir string) (string, error) {
	data, err := store.Load(samples)
	if err != nil {
		return "", err
	}
	m, err := model.New(Arch, 1)
	if err != nil {
		return "", err
	}
	if _, err := m.Train(data, TrainOptions()); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, ModelFile)
	if err := m.Save(path); err != nil {
		return "", err
	}
	return path, WriteIndex(filepath.Join(dir, LineageFile), samples)
}

// SimulationConfig sizes the in-process loop.
type SimulationConfig struct {
	Initial InitialSetup
	// StreamStart is the first training image streamed to the inference worker; StreamPerRound
	// images are streamed per round.
	StreamStart, StreamPerRound int
	Rounds                      int
	// Threshold is CrossEntropy's threshold_cross_entropy.
	Threshold float64
	// TrainProb is the dataset's trainProb; TrainTrigger the num_of_samples the train pool must
	// exceed.
	TrainProb    float64
	TrainTrigger int
	// TestLimit measures on the first TestLimit test images (0: all 10,000).
	TestLimit int
}

// DefaultSimulation is the configuration the README's table comes from; the YAML matches it.
func DefaultSimulation() SimulationConfig {
	return SimulationConfig{Initial: InitialSetup{Size: 500}, StreamStart: 10000, StreamPerRound: 3000, Rounds: 3,
		Threshold: 0.7, TrainProb: 0.8, TrainTrigger: 200}
}

// RoundResult is one row of the simulation's table.
type RoundResult struct {
	Round        int     `json:"round"`
	Streamed     int     `json:"streamed"`
	Hard         int     `json:"hard"`
	Labelled     int     `json:"labelled"`
	TrainSamples int     `json:"trainSamples"`
	EvalSamples  int     `json:"evalSamples"`
	EvalTrained  float64 `json:"evalTrained"`
	EvalDeployed float64 `json:"evalDeployed"`
	Deployed     bool    `json:"deployed"`
	// TestAccuracy is the served model's accuracy on the test images after the round.
	TestAccuracy float64 `json:"testAccuracy"`
	ModelVersion int     `json:"modelVersion"`
	TrainSeconds float64 `json:"trainSeconds"`
}

// SimulationResult is the whole run.
type SimulationResult struct {
	InitialAccuracy float64       `json:"initialAccuracy"`
	TestImages      int           `json:"testImages"`
	Rounds          []RoundResult `json:"rounds"`
}

// Simulate runs the incremental learning loop in one process, through the same code as the
// workers and the same files as on a node (in workDir): the inference worker's Classify with
// CrossEntropy mining and a HardExampleCollector, the labeller appending to the dataset index, the
// LC's split of new samples (trainProb; eval versions kept ≤5) and train trigger, TrainRound,
// EvalModels with deploy on accuracy_delta > 0, and a model swap through Server.Load.
func Simulate(ctx context.Context, mnistDir, workDir string, config SimulationConfig, progress func(RoundResult)) (SimulationResult, error) {
	var result SimulationResult
	train, err := model.LoadTrain(mnistDir)
	if err != nil {
		return result, err
	}
	test, err := model.LoadTest(mnistDir)
	if err != nil {
		return result, err
	}
	test = test.Head(config.TestLimit)
	result.TestImages = test.Len()
	datasetDir := filepath.Join(workDir, "dataset")
	hardDir := filepath.Join(datasetDir, "hard-examples")
	indexPath := filepath.Join(datasetDir, "index.txt")
	store := NewStore(datasetDir, mnistDir)
	initialPath, err := TrainInitial(store, InitialSamples(train, config.Initial), filepath.Join(workDir, "models", "initial"))
	if err != nil {
		return result, fmt.Errorf("initial model: %w", err)
	}
	if err := os.MkdirAll(datasetDir, 0o755); err != nil {
		return result, err
	}
	if err := WriteIndex(indexPath, nil); err != nil {
		return result, err
	}
	collector, err := sdk.NewHardExampleCollector(hardDir, "")
	if err != nil {
		return result, err
	}
	defer func() { _ = collector.Close() }() // a directory handle only
	server := NewServer(&hem.CrossEntropy{Threshold: config.Threshold}, collector)
	if err := server.Load(ctx, initialPath); err != nil {
		return result, err
	}
	initial, err := model.Load(initialPath)
	if err != nil {
		return result, err
	}
	result.InitialAccuracy, _ = initial.Evaluate(test)
	labeller := NewLabeller(train)

	deployedPath, basePath := initialPath, initialPath
	seen := 0
	var trainPool []Sample
	var evalVersions [][]Sample
	next := config.StreamStart
	for round := 1; round <= config.Rounds; round++ {
		row := RoundResult{Round: round}
		// Users send images; the worker files the hard ones.
		for batchStart := 0; batchStart < config.StreamPerRound; batchStart += 100 {
			var images [][]float64
			for i := batchStart; i < min(batchStart+100, config.StreamPerRound) && next < train.Len(); i++ {
				images = append(images, train.Image(next))
				next++
			}
			if len(images) == 0 {
				break
			}
			response, err := server.Classify(ctx, images, true)
			if err != nil {
				return result, err
			}
			row.Streamed += len(images)
			for _, r := range response.Results {
				if r.Hard {
					row.Hard++
				}
			}
		}
		report, err := LabelHardExamples(labeller, indexPath, hardDir, "")
		if err != nil {
			return result, err
		}
		row.Labelled = report.Added
		// The LC's data handler: new lines split trainProb / rest.
		samples, err := ReadIndex(indexPath)
		if err != nil {
			return result, err
		}
		fresh := samples[seen:]
		seen = len(samples)
		toTrain := int(config.TrainProb * float64(len(fresh)))
		trainPool = append(trainPool, fresh[:toTrain]...)
		if len(fresh) > toTrain {
			evalVersions = append(evalVersions, fresh[toTrain:])
			if len(evalVersions) > 5 {
				evalVersions = evalVersions[len(evalVersions)-5:]
			}
		}
		if len(trainPool) <= config.TrainTrigger {
			row.TestAccuracy, _ = server.model().m.Evaluate(test)
			row.ModelVersion = server.Stats().ModelVersion
			result.Rounds = append(result.Rounds, row)
			if progress != nil {
				progress(row)
			}
			continue
		}
		roundDir := filepath.Join(workDir, "output")
		trainData := filepath.Join(roundDir, "data", "train", fmt.Sprint(round), "data.txt")
		if err := os.MkdirAll(filepath.Dir(trainData), 0o755); err != nil {
			return result, err
		}
		if err := WriteIndex(trainData, trainPool); err != nil {
			return result, err
		}
		row.TrainSamples = len(trainPool)
		trainPool = nil
		started := time.Now()
		trained, err := TrainRound(store, basePath, trainData, filepath.Join(roundDir, "train", fmt.Sprint(round)))
		if err != nil {
			return result, fmt.Errorf("round %d: %w", round, err)
		}
		row.TrainSeconds = time.Since(started).Seconds()
		basePath = trained.ModelPath
		var evalSamples []Sample
		for _, version := range evalVersions {
			evalSamples = append(evalSamples, version...)
		}
		evalData := filepath.Join(roundDir, "data", "eval", fmt.Sprint(round), "data.txt")
		if len(evalSamples) == 0 {
			evalData = trainData
		} else {
			if err := os.MkdirAll(filepath.Dir(evalData), 0o755); err != nil {
				return result, err
			}
			if err := WriteIndex(evalData, evalSamples); err != nil {
				return result, err
			}
		}
		row.EvalSamples = len(evalSamples)
		evaluated, err := EvalModels(store, []string{trained.ModelPath, deployedPath}, evalData)
		if err != nil {
			return result, fmt.Errorf("round %d: %w", round, err)
		}
		row.EvalTrained = evaluated[0].Metrics["accuracy"].([]float64)[0]
		row.EvalDeployed = evaluated[1].Metrics["accuracy"].([]float64)[0]
		if row.EvalTrained-row.EvalDeployed > 0 {
			if err := server.Load(ctx, trained.ModelPath); err != nil {
				return result, err
			}
			deployedPath, row.Deployed = trained.ModelPath, true
		}
		row.TestAccuracy, _ = server.model().m.Evaluate(test)
		row.ModelVersion = server.Stats().ModelVersion
		result.Rounds = append(result.Rounds, row)
		if progress != nil {
			progress(row)
		}
	}
	return result, nil
}
