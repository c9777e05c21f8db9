// Package il is the MNIST incremental learning example's logic, shared by its commands and its
// simulation so that both run the same code:
//
//   - the dataset index format: lines "<ref> <label>", where ref is either a PNG file
//     ("hard-examples/x.png") or an image of an MNIST idx file ("mnist/train-images-idx3-ubyte.gz:123"),
//     relative to the directory of the dataset index (dataset.go, png.go);
//   - the train and eval workers' functions for pkg/sdk/incrementallearning (worker.go);
//   - the inference worker's HTTP API with hard example collection (server.go);
//   - the labelling stand-in that looks the true labels up in MNIST (label.go);
//   - the in-process simulation of the whole loop (simulate.go).
//
// It reuses the joint inference example's model package (examples/joint_inference/mnist/model)
// for the model, its training and its file format; it owns nothing outside this example.
package il
