package incrementallearning

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

// Environment variables of incremental learning workers (contract §5.1) that package env does
// not name.
const (
	EnvBaseModelURL           = "BASE_MODEL_URL"
	EnvModelURLs              = "MODEL_URLS"
	EnvTrainDatasetURL        = "TRAIN_DATASET_URL"
	EnvTestDatasetURL         = "TEST_DATASET_URL"
	EnvOriginalDatasetURL     = "ORIGINAL_DATASET_URL"
	EnvModelHotUpdate         = "MODEL_HOT_UPDATE"
	EnvModelHotUpdateConfig   = "MODEL_HOT_UPDATE_CONFIG"
	EnvModelPollPeriodSeconds = "MODEL_POLL_PERIOD_SECONDS"

	// DefaultModelPollPeriod is upstream's MODEL_POLL_PERIOD_SECONDS default.
	DefaultModelPollPeriod = 60 * time.Second
)

// Report vocabulary on the wire.
const (
	OwnerKind       = "incrementallearningjob"
	KindTrain       = "train"
	KindEval        = "eval"
	KindDeploy      = "deploy"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Reporter sends one message to the LC; *lc.Client implements it.
type Reporter interface {
	Report(ctx context.Context, msg lc.Message) error
}

var _ Reporter = (*lc.Client)(nil)

// Options build a Worker. The zero value reads the process environment and reports with
// upstream's retry policy.
type Options struct {
	// Env is the worker environment; nil means env.FromOS().
	Env *env.Context
	// Reporter replaces the LC client built from LC_SERVER and WORKER_NAME.
	Reporter Reporter
	// Client tunes the LC client built when Reporter is nil (Server and Worker come from Env).
	Client lc.Options
}

// Worker is one incremental learning worker process: its identity and its LC.
type Worker struct {
	env      *env.Context
	reporter Reporter
	// Identity in reports.
	name, namespace, job string
}

// NewWorker reads the worker's identity and builds its LC client.
func NewWorker(opts Options) (*Worker, error) {
	environment := opts.Env
	if environment == nil {
		environment = env.FromOS()
	}
	w := &Worker{env: environment, reporter: opts.Reporter, namespace: environment.Namespace(), job: environment.JobName()}
	// Upstream names the worker after the job when WORKER_NAME is unset.
	w.name = environment.WorkerName()
	if w.name == "" {
		w.name = w.job
	}
	if w.namespace == "" {
		w.namespace = w.job
	}
	if w.reporter == nil {
		clientOpts := opts.Client
		clientOpts.Server, clientOpts.Worker = environment.LCServerURL(), w.name
		if clientOpts.Token == "" {
			clientOpts.Token = environment.Get(workerauth.TokenEnv, "")
		}
		client, err := lc.New(clientOpts)
		if err != nil {
			return nil, fmt.Errorf("creating the incremental learning worker: %w", err)
		}
		w.reporter = client
	}
	return w, nil
}

// Env is the environment the worker reads.
func (w *Worker) Env() *env.Context { return w.env }

func (w *Worker) report(ctx context.Context, kind, status string, results []map[string]any) error {
	return w.reporter.Report(ctx, lc.Message{
		Name: w.name, Namespace: w.namespace, OwnerName: w.job, OwnerKind: OwnerKind,
		Kind: kind, Status: status, Results: resultsOrNil(results),
	})
}

// resultsOrNil leaves "results" out of the body when there are none, as upstream does.
func resultsOrNil(results []map[string]any) any {
	if len(results) == 0 {
		return nil
	}
	return results
}

// Model is a model a stage produced or evaluated, as reported: {format, url, metrics}.
type Model struct {
	Format string `json:"format"`
	// URL is where the worker wrote or read the model, in its own filesystem; DATA_PATH_PREFIX
	// is removed before it is reported.
	URL string `json:"url"`
	// Metrics are numbers or lists of numbers by name (the LC's deploy trigger reads them).
	Metrics map[string]any `json:"metrics,omitempty"`
}

func (w *Worker) hostURL(url string) string {
	prefix := strings.TrimSuffix(w.env.DataPathPrefix(), "/")
	if prefix == "" {
		return url
	}
	if rest, ok := strings.CutPrefix(url, prefix+"/"); ok {
		return "/" + rest
	}
	return url
}

func (w *Worker) modelResults(models []Model) []map[string]any {
	results := make([]map[string]any, 0, len(models))
	for _, model := range models {
		result := map[string]any{"format": model.Format, "url": w.hostURL(model.URL)}
		if model.Metrics != nil {
			result["metrics"] = model.Metrics
		}
		results = append(results, result)
	}
	return results
}

// TrainInput is what GM hands a train pod.
type TrainInput struct {
	// BaseModelURL is the model to start from (BASE_MODEL_URL): the initial model in round 1,
	// the previous round's trained model later.
	BaseModelURL string
	// OutputDir is where the trained model goes (MODEL_URL).
	OutputDir string
	// TrainDatasetURL is this round's training index (TRAIN_DATASET_URL).
	TrainDatasetURL string
	// OriginalDatasetURL is the dataset's own index (ORIGINAL_DATASET_URL); sample paths in the
	// training index are relative to its directory.
	OriginalDatasetURL string
	// DataPathPrefix is where GM mounts host paths (DATA_PATH_PREFIX).
	DataPathPrefix string
}

// TrainOutput is what a training produced: usually one model in OutputDir.
type TrainOutput struct {
	Models []Model
}

// EvalInput is what GM hands an eval pod.
type EvalInput struct {
	// ModelURLs are the models to evaluate (MODEL_URLS, ";"-separated): the trained model first,
	// then the model it is compared with.
	ModelURLs []string
	// TestDatasetURL is the evaluation index (TEST_DATASET_URL).
	TestDatasetURL     string
	OriginalDatasetURL string
	DataPathPrefix     string
}

// EvalResult is the evaluation of one model of EvalInput.ModelURLs. URL may be left empty: it is
// filled with the model's URL.
type EvalResult = Model

// TrainInput reads the train pod's environment. BASE_MODEL_URL, MODEL_URL and TRAIN_DATASET_URL
// must be set.
func (w *Worker) TrainInput() (TrainInput, error) {
	in := TrainInput{
		BaseModelURL:       w.env.Get(EnvBaseModelURL, ""),
		OutputDir:          w.env.ModelURL(),
		TrainDatasetURL:    w.env.Get(EnvTrainDatasetURL, ""),
		OriginalDatasetURL: w.env.Get(EnvOriginalDatasetURL, ""),
		DataPathPrefix:     w.env.DataPathPrefix(),
	}
	var missing []string
	for name, value := range map[string]string{EnvBaseModelURL: in.BaseModelURL, env.ModelURL: in.OutputDir, EnvTrainDatasetURL: in.TrainDatasetURL} {
		if value == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return in, fmt.Errorf("train worker environment: %s not set (is this pod a train worker of an IncrementalLearningJob?)", strings.Join(slices.Sorted(slices.Values(missing)), ", "))
	}
	return in, nil
}

// EvalInput reads the eval pod's environment. MODEL_URLS and TEST_DATASET_URL must be set.
func (w *Worker) EvalInput() (EvalInput, error) {
	in := EvalInput{
		TestDatasetURL:     w.env.Get(EnvTestDatasetURL, ""),
		OriginalDatasetURL: w.env.Get(EnvOriginalDatasetURL, ""),
		DataPathPrefix:     w.env.DataPathPrefix(),
	}
	for _, url := range strings.Split(w.env.Get(EnvModelURLs, ""), ";") {
		if url = strings.TrimSpace(url); url != "" {
			in.ModelURLs = append(in.ModelURLs, url)
		}
	}
	var missing []string
	if len(in.ModelURLs) == 0 {
		missing = append(missing, EnvModelURLs)
	}
	if in.TestDatasetURL == "" {
		missing = append(missing, EnvTestDatasetURL)
	}
	if len(missing) > 0 {
		return in, fmt.Errorf("eval worker environment: %s not set (is this pod an eval worker of an IncrementalLearningJob?)", strings.Join(missing, ", "))
	}
	return in, nil
}

// Train reads the train input, runs train and reports the outcome: kind train, status completed
// with the models as results, or status failed. It returns train's error or the report's.
func (w *Worker) Train(ctx context.Context, train func(TrainInput) (TrainOutput, error)) error {
	in, err := w.TrainInput()
	if err == nil {
		var out TrainOutput
		out, err = train(in)
		if err == nil && len(out.Models) == 0 {
			err = errors.New("training produced no model")
		}
		if err == nil {
			if reportErr := w.report(ctx, KindTrain, StatusCompleted, w.modelResults(out.Models)); reportErr != nil {
				return fmt.Errorf("reporting the trained model: %w", reportErr)
			}
			return nil
		}
	}
	return errors.Join(fmt.Errorf("training: %w", err), w.reportFailure(ctx, KindTrain))
}

// Eval reads the eval input, runs eval and reports kind eval: status completed with one result per
// model of MODEL_URLS, in that order, or status failed.
func (w *Worker) Eval(ctx context.Context, eval func(EvalInput) ([]EvalResult, error)) error {
	in, err := w.EvalInput()
	if err == nil {
		var results []EvalResult
		results, err = eval(in)
		if err == nil && len(results) != len(in.ModelURLs) {
			err = fmt.Errorf("evaluation returned %d results for %d models: the LC compares them by position", len(results), len(in.ModelURLs))
		}
		if err == nil {
			for i := range results {
				if results[i].URL == "" {
					results[i].URL = in.ModelURLs[i]
				}
			}
			if reportErr := w.report(ctx, KindEval, StatusCompleted, w.modelResults(results)); reportErr != nil {
				return fmt.Errorf("reporting the evaluation: %w", reportErr)
			}
			return nil
		}
	}
	return errors.Join(fmt.Errorf("evaluation: %w", err), w.reportFailure(ctx, KindEval))
}

func (w *Worker) reportFailure(ctx context.Context, kind string) error {
	if err := w.report(ctx, kind, StatusFailed, nil); err != nil {
		return fmt.Errorf("reporting the failure: %w", err)
	}
	return nil
}

// Train is Worker.Train for the process environment.
func Train(ctx context.Context, train func(TrainInput) (TrainOutput, error)) error {
	w, err := NewWorker(Options{})
	if err != nil {
		return err
	}
	return w.Train(ctx, train)
}

// Eval is Worker.Eval for the process environment.
func Eval(ctx context.Context, eval func(EvalInput) ([]EvalResult, error)) error {
	w, err := NewWorker(Options{})
	if err != nil {
		return err
	}
	return w.Eval(ctx, eval)
}
