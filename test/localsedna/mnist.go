package localsedna

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/test/localcluster"
)

// MNISTModelDir is where the joint inference MNIST example's models are trained to, once:
// training is deterministic, so the files are reused across runs.
func MNISTModelDir() string {
	return filepath.Join(localcluster.RepoRoot(), "_output", "mnist", "models")
}

// InstallMNISTModels trains the examples/joint_inference/mnist models if they are not there yet
// and copies them to where the example's Models point: /data/mnist/models on edge-node-1 (edge)
// and on the cloud node (cloud). It returns mnist-train's output, empty if nothing was trained.
func (s *Sedna) InstallMNISTModels(ctx context.Context) (string, error) {
	dir := MNISTModelDir()
	var trained []byte
	if _, err := os.Stat(filepath.Join(dir, "cloud.model")); err != nil {
		cmd := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, "mnist-train"), "--out-dir", dir)
		cmd.Dir = localcluster.RepoRoot() // mnist-train finds the MNIST files through the module cache
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("training the MNIST models: %w\n%s", err, out)
		}
		trained = out
	}
	for node, file := range map[string]string{EdgeNodeName(1): "edge.model", CloudNode: "cloud.model"} {
		n, ok := s.Node(node)
		if !ok {
			return "", fmt.Errorf("no node %s", node)
		}
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return "", err
		}
		dst := n.HostPath("/data/mnist/models/" + file)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", err
		}
	}
	return string(trained), nil
}

// MNISTEvalResult is the RESULT line of mnist-eval (the joint inference example's evaluator).
type MNISTEvalResult struct {
	Images        int                `json:"images"`
	Accuracy      float64            `json:"accuracy"`
	CloudShare    float64            `json:"cloudShare"`
	Fallbacks     int                `json:"fallbacks"`
	Sources       map[string]int     `json:"sources"`
	EdgeAccuracy  float64            `json:"edgeAccuracy"`
	CloudAccuracy float64            `json:"cloudAccuracy"`
	EdgeStats     map[string]float64 `json:"edgeStats"`
}

// RunMNISTEval runs the mnist-eval binary bin with args from the repository root (it finds the
// MNIST files through the module cache) and decodes its RESULT line; out is all it printed.
func RunMNISTEval(ctx context.Context, bin string, args ...string) (result MNISTEvalResult, out string, err error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = localcluster.RepoRoot()
	raw, err := cmd.CombinedOutput()
	out = string(raw)
	if err != nil {
		return result, out, fmt.Errorf("mnist-eval %v: %w", args, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last, ok := strings.CutPrefix(lines[len(lines)-1], "RESULT ")
	if !ok {
		return result, out, fmt.Errorf("mnist-eval %v printed no RESULT line", args)
	}
	if err := json.Unmarshal([]byte(last), &result); err != nil {
		return result, out, fmt.Errorf("mnist-eval %v: decoding its RESULT line: %w", args, err)
	}
	return result, out, nil
}

// MetricValue is the number a joint inference service's status.metrics holds under key (the
// edge worker's counters as GM publishes them); false when absent or not a number.
func MetricValue(ji *sednav1.JointInferenceService, key string) (float64, bool) {
	for _, m := range ji.Status.Metrics {
		if m.Key == key {
			v, err := strconv.ParseFloat(m.Value, 64)
			return v, err == nil
		}
	}
	return 0, false
}
