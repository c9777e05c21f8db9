// Command mnist-il-drive plays the users of the MNIST incremental learning example against a
// running inference worker: it streams MNIST TRAINING images to POST /classify (the worker files
// the hard ones), optionally waits until the worker serves a given model version, and measures the
// accuracy of the served model on the 10,000 MNIST TEST images (sent with collect=false, so the
// test set stays out of the dataset). The last line is RESULT {json}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

type options struct {
	url, mnistDir              string
	streamStart, stream, batch int
	measure                    bool
	testLimit, waitVersion     int
	waitTimeout, timeout       time.Duration
}

// Result is the RESULT line.
type Result struct {
	Streamed      int      `json:"streamed"`
	StreamHard    int      `json:"streamHard"`
	StreamFiled   int      `json:"streamFiled"`
	TestImages    int      `json:"testImages,omitempty"`
	Accuracy      float64  `json:"accuracy,omitempty"`
	ModelVersions []int    `json:"modelVersions,omitempty"`
	Stats         il.Stats `json:"stats"`
	Seconds       float64  `json:"seconds"`
}

func main() {
	var opts options
	flag.StringVar(&opts.url, "url", "http://127.0.0.1:8000", "the inference worker's base URL")
	flag.StringVar(&opts.mnistDir, "mnist-dir", "", "directory of the MNIST .gz files (default: the GoMNIST module's data/)")
	flag.IntVar(&opts.streamStart, "stream-start", il.DefaultSimulation().StreamStart, "first training image to stream")
	flag.IntVar(&opts.stream, "stream", 0, "training images to stream (0: none)")
	flag.IntVar(&opts.batch, "batch", 100, "images per request")
	flag.BoolVar(&opts.measure, "measure", true, "measure the served model on the test images")
	flag.IntVar(&opts.testLimit, "test-limit", 0, "measure on the first N test images (0: all 10,000)")
	flag.IntVar(&opts.waitVersion, "wait-version", 0, "before measuring, wait until /stats shows at least this model version")
	flag.DurationVar(&opts.waitTimeout, "wait-timeout", 5*time.Minute, "how long --wait-version waits")
	flag.DurationVar(&opts.timeout, "timeout", 30*time.Second, "timeout of one request")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-il-drive:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts options) error {
	started := time.Now()
	var err error
	if opts.mnistDir == "" {
		if opts.mnistDir, err = model.DefaultMNISTDir(); err != nil {
			return err
		}
	}
	client := &il.Client{BaseURL: opts.url}
	var result Result
	if opts.stream > 0 {
		train, err := model.LoadTrain(opts.mnistDir)
		if err != nil {
			return err
		}
		end := min(opts.streamStart+opts.stream, train.Len())
		if err := each(ctx, client, train, opts.streamStart, end, opts, true, func(r il.ClassifyResponse, _ int) {
			for _, answer := range r.Results {
				result.Streamed++
				if answer.Hard {
					result.StreamHard++
				}
				if answer.Collected {
					result.StreamFiled++
				}
			}
		}); err != nil {
			return err
		}
		fmt.Printf("streamed training images %d..%d: %d hard, %d filed for labelling\n", opts.streamStart, end-1, result.StreamHard, result.StreamFiled)
	}
	if opts.waitVersion > 0 {
		deadline := time.Now().Add(opts.waitTimeout)
		for {
			stats, err := client.Stats(ctx)
			if err == nil && stats.ModelVersion >= opts.waitVersion {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the worker does not serve model version %d after %s (last: %+v, %v)", opts.waitVersion, opts.waitTimeout, stats, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	if opts.measure {
		test, err := model.LoadTest(opts.mnistDir)
		if err != nil {
			return err
		}
		test = test.Head(opts.testLimit)
		correct, versions := 0, map[int]bool{}
		if err := each(ctx, client, test, 0, test.Len(), opts, false, func(r il.ClassifyResponse, first int) {
			versions[r.ModelVersion] = true
			for i, answer := range r.Results {
				if answer.Label == int(test.Labels[first+i]) {
					correct++
				}
			}
		}); err != nil {
			return err
		}
		result.TestImages, result.Accuracy = test.Len(), float64(correct)/float64(test.Len())
		for v := range versions {
			result.ModelVersions = append(result.ModelVersions, v)
		}
	}
	if result.Stats, err = client.Stats(ctx); err != nil {
		return err
	}
	result.Seconds = time.Since(started).Seconds()
	if opts.measure {
		fmt.Printf("%d MNIST test images through %s: accuracy %.2f%% (model version %d, digest %s, pid %d)\n",
			result.TestImages, opts.url, 100*result.Accuracy, result.Stats.ModelVersion, result.Stats.ModelDigest, result.Stats.PID)
	}
	encoded, err := json.Marshal(result)
	if err != nil {
		return err
	}
	fmt.Printf("RESULT %s\n", encoded)
	return nil
}

// each sends images [from, to) of data in batches and hands every answer to handle with the index
// of its first image.
func each(ctx context.Context, client *il.Client, data model.Dataset, from, to int, opts options, collect bool, handle func(il.ClassifyResponse, int)) error {
	for start := from; start < to; start += opts.batch {
		end := min(start+opts.batch, to)
		images := make([][]float64, 0, end-start)
		for i := start; i < end; i++ {
			images = append(images, data.Image(i))
		}
		requestCtx, cancel := context.WithTimeout(ctx, opts.timeout)
		response, err := client.Classify(requestCtx, images, collect)
		cancel()
		if err != nil {
			return err
		}
		if len(response.Results) != len(images) {
			return fmt.Errorf("sent %d images, got %d answers", len(images), len(response.Results))
		}
		handle(response, start)
	}
	return nil
}
