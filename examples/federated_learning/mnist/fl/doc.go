// Package fl is the MNIST federated learning example's logic, shared by its
// commands and its measurement so that both run the same code:
//
//   - the non-IID split of MNIST's 60,000 training images over three edge
//     nodes, each seeing four digit classes (split.go);
//   - the conversion between the model and federated.Weights, local
//     training and evaluation (train.go);
//   - the measurement of nodes trained alone, the federated model per round
//     (a real aggregation server and three Go clients on loopback) and a
//     central model (measure.go).
//
// The model, its training and the MNIST readers are the joint inference
// example's (examples/joint_inference/mnist/model); the dataset index format
// is the incremental learning example's (examples/incremental_learning/
// mnist/il): lines "mnist/train-images-idx3-ubyte.gz:<n> <label>".
package fl
