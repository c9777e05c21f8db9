// Package managers owns the contract between sedna-lc's plumbing and its feature managers: the
// Manager interface every manager implements (one per channel kind: dataset, model, and one per
// learning feature), the WorkerMessage a worker posts to the LC's HTTP API, the Reporter through
// which managers queue reports for GM, and the Dispatcher that routes resources from GM and
// worker messages to the manager of their kind.
//
// It also holds Forwarder, the whole manager of the features whose LC side only relays worker
// reports to GM (joint inference, federated learning), in upstream Sedna's forwarded shape.
//
// The package does not talk to GM, open the store for writing or serve HTTP: the GM client
// (pkg/localcontroller/gmclient) stores resources and calls the Dispatcher, implements Reporter on
// top of the store's durable outbox, and pkg/localcontroller/server parses worker messages. The
// feature managers live in the sub-packages.
package managers
