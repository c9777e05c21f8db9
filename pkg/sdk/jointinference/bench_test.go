package jointinference

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sedna-go/sedna/pkg/sdk/hem"
)

// The benchmarks below send edge→cloud requests through the library on
// loopback: a real Server (Serve on 127.0.0.1:0) with a trivial Predictor, and
// an Edge whose miner sends every sample to the cloud. Both ends share the
// process and its cores. No figure here is asserted; docs/performance.md
// records them.

const benchJob = "sedna"

// benchImage is a 28×28 grey image normalised to [0,1], as an MNIST edge
// would send it. Every pixel is non-zero and most need 15+ digits, so the
// JSON body (~14 KB) is an upper bound for such an image.
func benchImage() []float64 {
	image := make([]float64, 28*28)
	for i := range image {
		image[i] = float64((i*37)%255+1) / 255
	}
	return image
}

// benchCloudResult is what the trivial cloud model answers.
type benchCloudResult struct {
	Label int       `json:"label"`
	Probs []float64 `json:"probs"`
}

func benchProbs() []float64 {
	return []float64{0.01, 0.02, 0.03, 0.7, 0.04, 0.05, 0.06, 0.03, 0.02, 0.04}
}

// benchEdgeModel is a trivial little model: it answers a fixed classification.
func benchEdgeModel() EdgeModel {
	probs := benchProbs()
	return EdgeModelFunc(func(context.Context, any) (EdgePrediction, error) {
		return EdgePrediction{
			Result: benchCloudResult{Label: 3, Probs: probs},
			Mining: hem.Inference{Probabilities: probs},
		}, nil
	})
}

// startBenchCloud serves a Server with a trivial Predictor on a loopback port
// until the benchmark ends, and returns its base URL.
func startBenchCloud(b *testing.B) string {
	b.Helper()
	probs := benchProbs()
	server, err := NewServer(ServerOptions{
		Job: benchJob,
		Predictor: PredictorFunc(func(context.Context, PredictRequest) (any, error) {
			return benchCloudResult{Label: 3, Probs: probs}, nil
		}),
	})
	if err != nil {
		b.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx, listener) }()
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			b.Errorf("cloud server: %v", err)
		}
	})
	return "http://" + listener.Addr().String()
}

// newBenchEdge builds an Edge with the upstream-named miner. Its transport
// keeps enough idle connections for the parallel benchmark, as a deployment
// with concurrent requests would configure it (http.DefaultTransport keeps 2
// per host, which would open a new connection for most parallel requests).
func newBenchEdge(b *testing.B, cloudURL, minerName string) *Edge {
	b.Helper()
	miner, err := hem.NewRegistry().New(minerName, nil)
	if err != nil {
		b.Fatal(err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	client := &http.Client{Transport: transport}
	b.Cleanup(transport.CloseIdleConnections)
	edge, err := NewEdge(EdgeOptions{
		Job:           benchJob,
		CloudURL:      cloudURL,
		Model:         benchEdgeModel(),
		Miner:         miner,
		CloudDeadline: 5 * time.Second,
		HTTPClient:    client,
	})
	if err != nil {
		b.Fatal(err)
	}
	return edge
}

// inferOnce runs one inference and says whether it went where the miner said
// it would.
func inferOnce(edge *Edge, image []float64, wantCloud bool) error {
	result, err := edge.Infer(context.Background(), image)
	if err != nil {
		return err
	}
	if result.FellBack() {
		return fmt.Errorf("cloud request fell back to the edge: %w", result.CloudErr)
	}
	if wantCloud != (result.CloudResult != nil) {
		return fmt.Errorf("cloud answer present = %v, want %v", result.CloudResult != nil, wantCloud)
	}
	return nil
}

// reportLatencies reports percentiles of the per-request durations in µs.
func reportLatencies(b *testing.B, latencies []time.Duration, names ...string) {
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	percentile := func(p float64) float64 {
		index := int(p * float64(len(latencies)-1))
		return float64(latencies[index]) / float64(time.Microsecond)
	}
	for _, name := range names {
		switch name {
		case "p50":
			b.ReportMetric(percentile(0.50), "p50-µs")
		case "p99":
			b.ReportMetric(percentile(0.99), "p99-µs")
		}
	}
}

func reportRequestRate(b *testing.B) {
	if elapsed := b.Elapsed(); elapsed > 0 {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	}
}

// reportBodySize reports the size of one request body, for reference.
func reportBodySize(b *testing.B, image []float64) {
	body, err := json.Marshal(struct {
		Data any `json:"data"`
	}{Data: image})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(body)), "req-body-B")
}

// BenchmarkEdgeToCloudSerial: one goroutine, each Infer a full round trip.
func BenchmarkEdgeToCloudSerial(b *testing.B) {
	edge := newBenchEdge(b, startBenchCloud(b), hem.NameCloudOnly)
	image := benchImage()
	if err := inferOnce(edge, image, true); err != nil { // open the connection before timing
		b.Fatal(err)
	}
	latencies := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := inferOnce(edge, image, true); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	reportRequestRate(b)
	reportLatencies(b, latencies, "p50", "p99")
	reportBodySize(b, image)
}

// BenchmarkEdgeToCloudParallel: 4 goroutines per GOMAXPROCS (8 on the 2-core
// machine) share one Edge and one cloud.
func BenchmarkEdgeToCloudParallel(b *testing.B) {
	edge := newBenchEdge(b, startBenchCloud(b), hem.NameCloudOnly)
	image := benchImage()
	if err := inferOnce(edge, image, true); err != nil {
		b.Fatal(err)
	}
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
	)
	b.SetParallelism(4) // 4 × GOMAXPROCS goroutines: 8 on the 2-core machine
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			start := time.Now()
			if err := inferOnce(edge, image, true); err != nil {
				b.Error(err) // not Fatal: this is not the benchmark's goroutine
				return
			}
			local = append(local, time.Since(start))
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	b.StopTimer()
	reportRequestRate(b)
	reportLatencies(b, latencies, "p50", "p99")
}

// BenchmarkEdgeOnly: the same Infer with the EdgeOnly miner, the library's
// cost without the network or JSON.
func BenchmarkEdgeOnly(b *testing.B) {
	edge := newBenchEdge(b, "http://127.0.0.1:1", hem.NameEdgeOnly)
	image := benchImage()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := inferOnce(edge, image, false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRequestRate(b)
}
