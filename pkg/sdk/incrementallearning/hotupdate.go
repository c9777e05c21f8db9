package incrementallearning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"k8s.io/klog/v2"
)

// maxConfigBytes bounds model_config.json; the LC writes a few hundred bytes.
const maxConfigBytes = 64 << 10

// HotUpdateConfig is model_config.json as the LC writes it.
type HotUpdateConfig struct {
	ModelConfig struct {
		ModelPath string `json:"model_path"`
		// ModelUpdateTime versions the model: a new value means a new model. Upstream compares it
		// as a string, so any JSON value is accepted and compared by its text.
		ModelUpdateTime json.RawMessage `json:"model_update_time"`
	} `json:"model_config"`
}

// LoadFunc loads the model at path (in the worker's filesystem) and starts serving it. It
// should leave the previous model serving when it fails.
type LoadFunc func(ctx context.Context, path string) error

// HotUpdaterOptions configure a HotUpdater.
type HotUpdaterOptions struct {
	// Worker reports the outcome of each load (kind deploy). Required.
	Worker *Worker
	// Load is called with each new model. Required.
	Load LoadFunc
	// ConfigPath replaces MODEL_HOT_UPDATE_CONFIG; Period replaces MODEL_POLL_PERIOD_SECONDS.
	ConfigPath string
	Period     time.Duration
}

// HotUpdater polls model_config.json and loads each model the LC deploys.
type HotUpdater struct {
	worker     *Worker
	load       LoadFunc
	configPath string
	period     time.Duration
	enabled    bool
	// loaded is the version last handed to Load (whether or not it loaded), so a model that
	// fails to load is not retried every period; the next deploy is.
	loaded string
}

// NewHotUpdater reads MODEL_HOT_UPDATE, MODEL_HOT_UPDATE_CONFIG and MODEL_POLL_PERIOD_SECONDS
// from the worker's environment. With hot update disabled, Run returns at once.
func NewHotUpdater(opts HotUpdaterOptions) (*HotUpdater, error) {
	if opts.Worker == nil || opts.Load == nil {
		return nil, errors.New("creating the model hot updater: Worker and Load are required")
	}
	environment := opts.Worker.Env()
	enabled, err := environment.Bool(EnvModelHotUpdate, false)
	if err != nil {
		return nil, fmt.Errorf("creating the model hot updater: %w", err)
	}
	h := &HotUpdater{worker: opts.Worker, load: opts.Load, configPath: opts.ConfigPath, period: opts.Period, enabled: enabled || opts.ConfigPath != ""}
	if h.configPath == "" {
		h.configPath = environment.Get(EnvModelHotUpdateConfig, "")
	}
	if h.period <= 0 {
		if h.period, err = environment.Seconds(EnvModelPollPeriodSeconds, DefaultModelPollPeriod); err != nil {
			return nil, fmt.Errorf("creating the model hot updater: %w", err)
		}
	}
	if h.enabled && h.configPath == "" {
		return nil, fmt.Errorf("creating the model hot updater: %s is true but %s is not set", EnvModelHotUpdate, EnvModelHotUpdateConfig)
	}
	return h, nil
}

// Enabled says whether the job enabled hot update for this worker.
func (h *HotUpdater) Enabled() bool { return h.enabled }

// Run checks for a new model every period until ctx ends, and returns nil then. The first check
// is immediate, so a worker restarted after a deploy serves the deployed model, not MODEL_URL.
func (h *HotUpdater) Run(ctx context.Context) error {
	if !h.enabled {
		return nil
	}
	logger := klog.FromContext(ctx).WithValues("config", h.configPath)
	ticker := time.NewTicker(h.period)
	defer ticker.Stop()
	for {
		if _, err := h.Check(ctx); err != nil {
			logger.Error(err, "Model hot update check failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Check reads the config once and, when it names a new version, calls Load and reports kind
// deploy, status completed or failed. It says whether a new version was found. A missing config
// file means nothing was deployed yet.
func (h *HotUpdater) Check(ctx context.Context) (bool, error) {
	config, err := readHotUpdateConfig(h.configPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	version := string(config.ModelConfig.ModelUpdateTime)
	if version == h.loaded {
		return false, nil
	}
	h.loaded = version
	path := config.ModelConfig.ModelPath
	result := []map[string]any{{"url": h.worker.hostURL(path)}}
	if loadErr := h.load(ctx, path); loadErr != nil {
		reportErr := h.worker.report(ctx, KindDeploy, StatusFailed, result)
		return true, errors.Join(fmt.Errorf("loading model %s: %w", path, loadErr), reportErr)
	}
	klog.FromContext(ctx).V(2).Info("Loaded a new model", "path", path, "version", version)
	if err := h.worker.report(ctx, KindDeploy, StatusCompleted, result); err != nil {
		return true, fmt.Errorf("reporting the loaded model %s: %w", path, err)
	}
	return true, nil
}

func readHotUpdateConfig(path string) (HotUpdateConfig, error) {
	var config HotUpdateConfig
	file, err := os.Open(path)
	if err != nil {
		return config, err
	}
	defer func() { _ = file.Close() }() // read only
	decoder := json.NewDecoder(&limitedReader{r: file, left: maxConfigBytes})
	if err := decoder.Decode(&config); err != nil {
		return config, fmt.Errorf("parsing %s: %w", path, err)
	}
	if config.ModelConfig.ModelPath == "" || len(config.ModelConfig.ModelUpdateTime) == 0 {
		return config, fmt.Errorf("%s has no model_config.model_path or model_config.model_update_time", path)
	}
	return config, nil
}

type limitedReader struct {
	r    *os.File
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("model hot-update config is larger than %d bytes", maxConfigBytes)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
