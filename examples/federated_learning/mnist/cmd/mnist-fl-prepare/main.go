// Command mnist-fl-prepare prepares an edge node's directory for the MNIST
// federated learning example: it copies the MNIST files to <data-dir>/mnist/
// and writes the node's non-IID share of the training images as the
// Dataset's index, <data-dir>/index.txt (lines
// "mnist/train-images-idx3-ubyte.gz:<n> <label>"). It prints the split of
// every node and a RESULT line.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sedna-go/sedna/examples/federated_learning/mnist/fl"
	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

func main() {
	dataDir := flag.String("data-dir", "/data/mnist-fl", "the example's directory on the node (the Dataset index's directory)")
	mnistDir := flag.String("mnist-dir", "", "directory of the MNIST .gz files (default: the GoMNIST module's data/)")
	node := flag.Int("node", 0, "which share the node holds: 1, 2 or 3 (edge-node-1..3)")
	flag.Parse()
	if err := run(*dataDir, *mnistDir, *node); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-fl-prepare:", err)
		os.Exit(1)
	}
}

func run(dataDir, mnistDir string, node int) error {
	if node < 1 || node > fl.Nodes {
		return fmt.Errorf("--node %d: want 1..%d", node, fl.Nodes)
	}
	var err error
	if mnistDir == "" {
		if mnistDir, err = model.DefaultMNISTDir(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dataDir, il.MNISTSubdir), 0o755); err != nil {
		return err
	}
	for _, name := range []string{il.TrainImagesFile, il.TrainLabelsFile, il.TestImagesFile, il.TestLabelsFile} {
		if err := copyFile(filepath.Join(mnistDir, name), filepath.Join(dataDir, il.MNISTSubdir, name)); err != nil {
			return err
		}
	}
	train, err := model.LoadTrain(mnistDir)
	if err != nil {
		return err
	}
	split := fl.Split(train.Labels)
	fmt.Print(fl.SplitTable(train.Labels, split))
	images := split[node-1]
	samples := make([]il.Sample, len(images))
	for i, image := range images {
		samples[i] = il.Sample{Ref: fmt.Sprintf("%s/%s:%d", il.MNISTSubdir, il.TrainImagesFile, image), Label: int(train.Labels[image])}
	}
	index := filepath.Join(dataDir, "index.txt")
	if err := il.WriteIndex(index, samples); err != nil {
		return err
	}
	fmt.Printf("%s: %d images of digits %v in %s\n", fl.NodeName(node-1), len(samples), fl.NodeClasses[node-1], index)
	encoded, err := json.Marshal(map[string]any{"node": fl.NodeName(node - 1), "index": index, "images": len(samples), "digits": fl.NodeClasses[node-1]})
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
