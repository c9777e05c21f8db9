// Command mnist-il-initial prepares a node's /data/mnist-il for the MNIST incremental learning
// example: it copies the MNIST training files to <data-dir>/mnist/, trains the initial model on
// the first --initial-size training images (so it is clearly weak), writes it with its lineage
// (train.txt) to models/initial/ and as the deployed model to models/deploy/, and creates an empty
// dataset index (index.txt) and the hard-examples/ and output/ directories.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

func main() {
	dataDir := flag.String("data-dir", "/data/mnist-il", "the example's directory on the node (the Dataset index's directory)")
	mnistDir := flag.String("mnist-dir", "", "directory of the MNIST .gz files (default: the GoMNIST module's data/)")
	size := flag.Int("initial-size", il.DefaultSimulation().Initial.Size, "training images the initial model learns from")
	resetIndex := flag.Bool("reset-index", false, "empty index.txt even if it exists")
	flag.Parse()
	if err := run(*dataDir, *mnistDir, *size, *resetIndex); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-il-initial:", err)
		os.Exit(1)
	}
}

func run(dataDir, mnistDir string, size int, resetIndex bool) error {
	started := time.Now()
	var err error
	if mnistDir == "" {
		if mnistDir, err = model.DefaultMNISTDir(); err != nil {
			return err
		}
	}
	for _, dir := range []string{il.MNISTSubdir, "hard-examples", "output", "models/initial", "models/deploy"} {
		if err := os.MkdirAll(filepath.Join(dataDir, dir), 0o755); err != nil {
			return err
		}
	}
	for _, name := range []string{il.TrainImagesFile, il.TrainLabelsFile} {
		if err := copyFile(filepath.Join(mnistDir, name), filepath.Join(dataDir, il.MNISTSubdir, name)); err != nil {
			return err
		}
	}
	train, err := model.LoadTrain(mnistDir)
	if err != nil {
		return err
	}
	test, err := model.LoadTest(mnistDir)
	if err != nil {
		return err
	}
	samples := il.InitialSamples(train, il.InitialSetup{Size: size})
	initialPath, err := il.TrainInitial(il.NewStore(dataDir, ""), samples, filepath.Join(dataDir, "models", "initial"))
	if err != nil {
		return err
	}
	deployPath := filepath.Join(dataDir, "models", "deploy", il.ModelFile)
	if err := copyFile(initialPath, deployPath); err != nil {
		return err
	}
	index := filepath.Join(dataDir, "index.txt")
	if _, err := os.Stat(index); resetIndex || errors.Is(err, fs.ErrNotExist) {
		if err := il.WriteIndex(index, nil); err != nil {
			return err
		}
	}
	m, err := model.Load(initialPath)
	if err != nil {
		return err
	}
	accuracy, _ := m.Evaluate(test)
	fmt.Printf("initial model %s trained on %d images: test accuracy %.2f%%; written to %s and %s (%.1fs)\n",
		il.Arch, len(samples), 100*accuracy, initialPath, deployPath, time.Since(started).Seconds())
	encoded, err := json.Marshal(map[string]any{"initialModel": initialPath, "deployModel": deployPath, "index": index,
		"trainImages": len(samples), "testAccuracy": accuracy})
	if err != nil {
		return err
	}
	fmt.Printf("RESULT %s\n", encoded)
	return nil
}

func copyFile(src, dst string) error {
	content, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
