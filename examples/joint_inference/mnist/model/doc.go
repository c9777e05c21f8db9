// Package model holds the two MNIST classifiers of the joint inference
// example: a small softmax regression on 2x2-pooled (14x14) images for the
// edge and a 784-256-10 ReLU perceptron for the cloud. Both are one
// architecture family (optional pooling, optional hidden layer), trained by
// minibatch SGD with momentum from a fixed seed, and saved in a small
// versioned binary format whose header names the architecture.
//
// The package also reads the MNIST IDX files. It has no network or
// Kubernetes code; the workers under ../cmd wrap it.
package model
