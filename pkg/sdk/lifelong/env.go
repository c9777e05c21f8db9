package lifelong

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sedna-go/sedna/pkg/sdk/env"
)

// Environment of lifelong learning workers (contract §2.8 and §5.1): what GM sets on the train,
// eval and inference pods, and the knowledge base token (ours).
const (
	EnvKBServer                    = "KB_SERVER"
	EnvCloudKBIndex                = "CLOUD_KB_INDEX"
	EnvHasCompletedInitialTraining = "HAS_COMPLETED_INITIAL_TRAINING"
	EnvModelURLs                   = "MODEL_URLS"
	EnvOutputURL                   = "OUTPUT_URL"
	EnvTrainDatasetURL             = "TRAIN_DATASET_URL"
	EnvTestDatasetURL              = "TEST_DATASET_URL"
	EnvOriginalDatasetURL          = "ORIGINAL_DATASET_URL"
	// EnvKBToken is the knowledge base's bearer token (write for train/eval, read for inference);
	// unset, no token is sent, as upstream's clients do.
	EnvKBToken = "SEDNA_KB_TOKEN"

	// DefaultOutputURL is upstream's OUTPUT_URL default for lifelong learning.
	DefaultOutputURL = "/tmp"
)

// Config is what a lifelong learning worker reads from its environment.
type Config struct {
	KBServer, KBToken string
	// HasCompletedInitialTraining is true from the second training on; CloudKBIndex is then the
	// index the previous training produced.
	HasCompletedInitialTraining bool
	CloudKBIndex                string
	// ModelURLs are MODEL_URLS split on ";" (eval: the trained index; inference: the deployed
	// index).
	ModelURLs                                           []string
	OutputURL                                           string
	TrainDatasetURL, TestDatasetURL, OriginalDatasetURL string
	DataPathPrefix                                      string
}

// ReadConfig reads the variables; which ones must be set depends on the stage (Config.Need).
func ReadConfig(environment *env.Context) (Config, error) {
	cfg := Config{
		KBServer:           strings.TrimSuffix(environment.Get(EnvKBServer, ""), "/"),
		KBToken:            environment.Get(EnvKBToken, ""),
		CloudKBIndex:       environment.Get(EnvCloudKBIndex, ""),
		OutputURL:          environment.Get(EnvOutputURL, DefaultOutputURL),
		TrainDatasetURL:    environment.Get(EnvTrainDatasetURL, ""),
		TestDatasetURL:     environment.Get(EnvTestDatasetURL, ""),
		OriginalDatasetURL: environment.Get(EnvOriginalDatasetURL, ""),
		DataPathPrefix:     environment.DataPathPrefix(),
	}
	for _, url := range strings.Split(environment.Get(EnvModelURLs, ""), ";") {
		if url = strings.TrimSpace(url); url != "" {
			cfg.ModelURLs = append(cfg.ModelURLs, url)
		}
	}
	var err error
	if cfg.HasCompletedInitialTraining, err = environment.Bool(EnvHasCompletedInitialTraining, false); err != nil {
		return Config{}, err
	}
	if cfg.HasCompletedInitialTraining && cfg.CloudKBIndex == "" {
		return Config{}, fmt.Errorf("%s is true but %s is not set: which index does this training extend?", EnvHasCompletedInitialTraining, EnvCloudKBIndex)
	}
	return cfg, nil
}

// Need checks that the named variables are set, naming every missing one.
func (c Config) Need(names ...string) error {
	values := map[string]string{
		EnvKBServer: c.KBServer, EnvTrainDatasetURL: c.TrainDatasetURL, EnvTestDatasetURL: c.TestDatasetURL,
		EnvOriginalDatasetURL: c.OriginalDatasetURL, EnvOutputURL: c.OutputURL,
	}
	var missing []string
	for _, name := range names {
		if name == EnvModelURLs {
			if len(c.ModelURLs) == 0 {
				missing = append(missing, name)
			}
			continue
		}
		if values[name] == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return errors.New("environment variables not set: " + strings.Join(missing, ", "))
	}
	return nil
}
