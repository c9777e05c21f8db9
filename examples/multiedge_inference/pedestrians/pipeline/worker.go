package pipeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/scene"
	"github.com/sedna-go/sedna/pkg/sdk/env"
)

// Environment of the example's workers, beyond the library's contract.
const (
	EnvSeed    = "SCENE_SEED"
	EnvPeople  = "SCENE_PEOPLE"
	EnvFrames  = "SCENE_FRAMES"
	EnvCameras = "SCENE_CAMERAS"
	EnvCamera  = "CAMERA"
)

// SceneFromEnv reads the scene the workers share; unset variables keep scene.DefaultConfig.
func SceneFromEnv(ctx *env.Context) (scene.Config, error) {
	cfg := scene.DefaultConfig()
	seed, err := ctx.Int(EnvSeed, int(cfg.Seed))
	if err != nil {
		return cfg, err
	}
	if seed < 0 {
		return cfg, fmt.Errorf("%s=%d is negative", EnvSeed, seed)
	}
	cfg.Seed = uint64(seed)
	for _, v := range []struct {
		name string
		into *int
	}{{EnvPeople, &cfg.People}, {EnvFrames, &cfg.Frames}, {EnvCameras, &cfg.Cameras}} {
		if *v.into, err = ctx.Int(v.name, *v.into); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

// ResultsFile is where a camera worker appends its frames under dir.
func ResultsFile(dir, camera string) string { return filepath.Join(dir, camera+".jsonl") }

// ReadResults reads a results file; a missing file is no results, and a torn last line (the
// worker was killed while writing) is dropped.
func ReadResults(path string) ([]FrameResult, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = file.Close() }() // read-only
	var results []FrameResult
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		var result FrameResult
		if err := json.Unmarshal(scanner.Bytes(), &result); err != nil {
			break
		}
		results = append(results, result)
	}
	return results, scanner.Err()
}

// ModelFile is the JSON the example's Model objects point at: which algorithm a worker runs and
// its parameters.
type ModelFile struct {
	Kind      string `json:"kind"`
	Threshold int    `json:"threshold,omitempty"`
	MinArea   int    `json:"minArea,omitempty"`
}

// Model kinds.
const (
	ModelDetector   = "pedestrians-detector"
	ModelAppearance = "pedestrians-appearance"
)

// ReadModel reads and checks a model file of kind.
func ReadModel(path, kind string) (ModelFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ModelFile{}, fmt.Errorf("reading model %s: %w", path, err)
	}
	var model ModelFile
	if err := json.Unmarshal(data, &model); err != nil {
		return ModelFile{}, fmt.Errorf("model %s is not JSON: %w", path, err)
	}
	if model.Kind != kind {
		return ModelFile{}, fmt.Errorf("model %s is a %q, want %q", path, model.Kind, kind)
	}
	if model.Threshold < 0 || model.MinArea < 0 {
		return ModelFile{}, fmt.Errorf("model %s: threshold and minArea must not be negative", path)
	}
	return model, nil
}

// DefaultModels are the model files the example ships (pedestrians-prepare writes them).
func DefaultModels() map[string]ModelFile {
	return map[string]ModelFile{
		"detector.json":   {Kind: ModelDetector, Threshold: detectThreshold, MinArea: detectMinArea},
		"appearance.json": {Kind: ModelAppearance},
	}
}
