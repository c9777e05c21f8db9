// Command pedestrians-measure runs the whole pedestrian pipeline in one process: it generates the
// scene, serves feature extraction and ReID on loopback HTTP with the library's servers, runs
// every camera's detection and tracking against them frame by frame, and prints the metrics of
// single-camera tracking and of multi-edge tracking with ReID.
//
// With --results it measures a deployed pipeline instead: the camera workers' result files (each
// directory holds <camera>.jsonl), and, with --search-url, search accuracy through an
// ObjectSearchService's user worker (whose tracking workers wrote --search-results). It ends with
// a RESULT line of JSON.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/pipeline"
	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/scene"
	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

func main() {
	cfg := scene.DefaultConfig()
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "scene seed")
	flag.IntVar(&cfg.People, "people", cfg.People, "number of people")
	flag.IntVar(&cfg.Frames, "frames", cfg.Frames, "frames per camera")
	flag.IntVar(&cfg.Cameras, "cameras", cfg.Cameras, "number of cameras")
	results := flag.String("results", "", "comma-separated directories of a deployed pipeline's <camera>.jsonl files")
	searchResults := flag.String("search-results", "", "comma-separated directories of the search service's tracking workers' files")
	searchURL := flag.String("search-url", "", "base URL of the ObjectSearchService's user worker")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if *results != "" {
		err = measureDeployed(ctx, cfg, *results, *searchResults, *searchURL, os.Getenv(multiedge.EnvToken))
	} else {
		err = run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pedestrians-measure:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, server *multiedge.Server) (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		if err := server.Serve(ctx, listener); err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
		}
	}()
	return "http://" + listener.Addr().String(), nil
}

func run(ctx context.Context, cfg scene.Config) error {
	started := time.Now()
	sc, err := scene.New(cfg)
	if err != nil {
		return err
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	token := hex.EncodeToString(secret)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feServer, err := multiedge.NewFeatureExtractionServer(multiedge.ExtractFeature, multiedge.ServerOptions{Token: token})
	if err != nil {
		return err
	}
	reidServer, err := multiedge.NewReIDServer(multiedge.NewGallery(multiedge.GalleryOptions{}), multiedge.ServerOptions{Token: token})
	if err != nil {
		return err
	}
	feURL, err := serve(ctx, feServer)
	if err != nil {
		return err
	}
	reidURL, err := serve(ctx, reidServer)
	if err != nil {
		return err
	}
	fe, reid := multiedge.NewClient(feURL, token, nil), multiedge.NewClient(reidURL, token, nil)
	analyzers := make([]*pipeline.Analyzer, cfg.Cameras)
	for c := range analyzers {
		analyzers[c] = pipeline.NewAnalyzer(scene.CameraName(c), sc.Background(c), pipeline.RemoteFeatures(fe), reid)
	}
	var results []pipeline.FrameResult
	for t := 0; t < cfg.Frames; t++ {
		for c, analyzer := range analyzers {
			frame, _ := sc.Render(c, t)
			result, err := analyzer.Process(ctx, t, frame)
			if err != nil {
				return err
			}
			results = append(results, result)
		}
	}
	report, err := pipeline.Evaluate(ctx, sc, results, pipeline.SearchWith(fe, reid))
	if err != nil {
		return err
	}
	fmt.Printf("pedestrians-measure --seed %d --people %d --frames %d --cameras %d\n", cfg.Seed, cfg.People, cfg.Frames, cfg.Cameras)
	if err := report.Print(os.Stdout); err != nil {
		return err
	}
	fmt.Printf("total time %.1fs\n", time.Since(started).Seconds())
	return printResult(report)
}

func printResult(report pipeline.Report) error {
	encoded, err := json.Marshal(report)
	if err != nil {
		return err
	}
	fmt.Printf("RESULT %s\n", encoded)
	return nil
}

func readDirs(dirs string, cameras int) ([]pipeline.FrameResult, error) {
	var all []pipeline.FrameResult
	for c := 0; c < cameras; c++ {
		found := false
		for _, dir := range strings.Split(dirs, ",") {
			results, err := pipeline.ReadResults(pipeline.ResultsFile(dir, scene.CameraName(c)))
			if err != nil {
				return nil, err
			}
			if len(results) > 0 {
				if found {
					return nil, fmt.Errorf("%s has results in two directories", scene.CameraName(c))
				}
				found = true
				all = append(all, results...)
			}
		}
		if !found {
			return nil, fmt.Errorf("no results for %s in %s", scene.CameraName(c), dirs)
		}
	}
	return all, nil
}

func measureDeployed(ctx context.Context, cfg scene.Config, dirs, searchDirs, searchURL, token string) error {
	sc, err := scene.New(cfg)
	if err != nil {
		return err
	}
	results, err := readDirs(dirs, cfg.Cameras)
	if err != nil {
		return err
	}
	report, err := pipeline.Evaluate(ctx, sc, results, nil)
	if err != nil {
		return err
	}
	if searchURL != "" {
		searched, err := readDirs(searchDirs, cfg.Cameras)
		if err != nil {
			return err
		}
		search := pipeline.SearchThrough(searchURL, token)
		withSearch, err := pipeline.Evaluate(ctx, sc, searched, search)
		if err != nil {
			return err
		}
		report.Queries, report.SearchTop1 = withSearch.Queries, withSearch.SearchTop1
		report.TargetFrames, report.Followed = withSearch.TargetFrames, withSearch.Followed
	}
	fmt.Printf("deployed pipeline, results from %s\n", dirs)
	if err := report.Print(os.Stdout); err != nil {
		return err
	}
	return printResult(report)
}
