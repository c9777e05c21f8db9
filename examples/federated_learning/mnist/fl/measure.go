package fl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/federated"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// Measurement is what the example measures, accuracies on the 10,000 test
// images.
type Measurement struct {
	NodeImages [Nodes]int `json:"nodeImages"`
	// Alone is each node's model trained only on its own share, for as many
	// epochs as the federated model's local training took in all.
	Alone [Nodes]float64 `json:"alone"`
	// Federated is the global model's accuracy after each round.
	Federated []float64 `json:"federated"`
	// Central is the model trained on all 60,000 images for as many epochs.
	Central float64 `json:"central"`
	Seconds float64 `json:"seconds"`
}

// Final is the federated model's accuracy after the last round.
func (m Measurement) Final() float64 {
	if len(m.Federated) == 0 {
		return 0
	}
	return m.Federated[len(m.Federated)-1]
}

// Measure trains (a) each node alone, (b) the three nodes federated through
// a real aggregation server (pkg/sdk/federated, FedAvg, every round waits
// for all three) with Go clients on loopback, and (c) a central model, and
// logs the results to log as it goes.
func Measure(ctx context.Context, train, test model.Dataset, cfg Config, log io.Writer) (Measurement, error) {
	// log is progress for a person watching; a failed write there must not stop the measurement.
	started := time.Now()
	var out Measurement
	if err := cfg.Validate(); err != nil {
		return out, err
	}
	split := Split(train.Labels)
	_, _ = fmt.Fprintf(log, "non-IID split of the %d training images (images per digit):\n%s", train.Len(), SplitTable(train.Labels, split))
	shares := make([]model.Dataset, Nodes)
	for node, images := range split {
		shares[node] = Subset(train, images)
		out.NodeImages[node] = len(images)
	}
	// Alone and central train for as many passes over their data as each
	// node's local training made in all rounds.
	epochs := max(1, cfg.Rounds*cfg.LocalEpochs/cfg.LocalParts)

	for node, share := range shares {
		m, err := cfg.NewModel()
		if err != nil {
			return out, err
		}
		if _, err := m.Train(share, cfg.TrainOptions(epochs, 0, node)); err != nil {
			return out, fmt.Errorf("training %s alone: %w", NodeName(node), err)
		}
		out.Alone[node], _ = m.Evaluate(test)
		_, _ = fmt.Fprintf(log, "(a) %s alone (digits %v, %d epochs): accuracy %.2f%%\n", NodeName(node), NodeClasses[node], epochs, 100*out.Alone[node])
	}

	federatedAccuracy, err := runFederated(ctx, shares, test, cfg, func(round int, accuracy float64) {
		_, _ = fmt.Fprintf(log, "(b) federated round %2d: accuracy %.2f%%\n", round, 100*accuracy)
	})
	if err != nil {
		return out, err
	}
	out.Federated = federatedAccuracy

	m, err := cfg.NewModel()
	if err != nil {
		return out, err
	}
	if _, err := m.Train(train, cfg.TrainOptions(epochs, 0, Nodes)); err != nil {
		return out, fmt.Errorf("training the central model: %w", err)
	}
	out.Central, _ = m.Evaluate(test)
	_, _ = fmt.Fprintf(log, "(c) central on all %d images (%d epochs): accuracy %.2f%%\n", train.Len(), epochs, 100*out.Central)
	out.Seconds = time.Since(started).Seconds()
	return out, nil
}

// runFederated serves FedAvg on a loopback port and runs one Go client per
// node until the exit round; roundDone gets the global model's test
// accuracy after every round.
func runFederated(ctx context.Context, shares []model.Dataset, test model.Dataset, cfg Config, roundDone func(round int, accuracy float64)) ([]float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	server, err := federated.NewServer(ctx, federated.ServerOptions{Job: "mnist-fl-measure",
		ServerOptimizer: cfg.ServerOptimizer(), Policy: federated.Policy{Participants: len(shares), ExitRound: cfg.Rounds}})
	if err != nil {
		return nil, err
	}
	defer server.Close()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	httpServer := &http.Server{Handler: server, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = httpServer.Serve(listener) }() // ends with Close below
	defer func() { _ = httpServer.Close() }()      // nothing left to serve
	initial, err := cfg.NewModel()
	if err != nil {
		return nil, err
	}
	var (
		mu         sync.Mutex
		accuracies []float64
		wg         sync.WaitGroup
		errs       = make([]error, len(shares))
	)
	for node, share := range shares {
		opts := federated.ClientOptions{URL: "ws://" + listener.Addr().String() + server.Path(), ClientID: NodeName(node),
			JobName: "mnist-fl-measure", Binary: true, DType: federated.Float64}
		if node == 0 {
			opts.Evaluate = func(_ context.Context, agg *federated.Aggregate) (map[string]float64, error) {
				accuracy, err := cfg.Accuracy(agg.Weights, test)
				if err != nil {
					return nil, err
				}
				mu.Lock()
				accuracies = append(accuracies, accuracy)
				mu.Unlock()
				roundDone(agg.Round, accuracy)
				return map[string]float64{"accuracy": accuracy}, nil
			}
			opts.Reporter = discard{}
		}
		client, err := federated.NewClient(opts)
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[node] = client.Run(ctx, ToWeights(initial), &LocalTrainer{Config: cfg, Node: node, Data: share})
			if errs[node] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("federated training: %w", err)
	}
	return accuracies, nil
}

// discard is a Reporter that drops reports: the measurement has no LC, the
// client only reports so that Evaluate runs.
type discard struct{}

func (discard) Report(context.Context, lc.Message) error { return nil }
