package federated

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/klog/v2"
)

// The benchmarks run whole rounds on loopback: a real Server (httptest, one
// process) and N raw WebSocket clients that each send a pre-encoded update
// of a 1 M-parameter model and read the aggregate. Each iteration is one
// round: N updates in, one aggregation, N aggregates out. The clients share
// the process and its cores with the server. No figure is asserted;
// docs/performance.md records them.

// benchSide squared is the model's parameter count: one 1000×1000 layer, 1 M parameters.
const benchSide = 1000

func BenchmarkAggregationRound(b *testing.B) {
	for _, tc := range []struct {
		clients int
		binary  bool
	}{{10, true}, {100, true}, {10, false}} {
		mode := "json"
		if tc.binary {
			mode = "binary-float32"
		}
		b.Run(fmt.Sprintf("%s/clients=%d", mode, tc.clients), func(b *testing.B) {
			benchmarkRounds(b, tc.clients, tc.binary)
		})
	}
}

func benchUpdate(b *testing.B, id string, binary bool) []byte {
	w := Weights{NewLayer(benchSide, benchSide)}
	for i := range w[0].Values {
		w[0].Values[i] = float64(i%benchSide) / benchSide
	}
	if binary {
		frame, err := encodeBinary(binaryHeader{Type: TypeUpdateWeight, Client: id, JobName: testJob, NumSamples: 10}, w, Float32)
		if err != nil {
			b.Fatal(err)
		}
		return frame
	}
	frame := []byte(`{"type":"update_weight","client":"` + id + `","data":{"num_samples":10,"weights":`)
	frame = appendJSONWeights(frame, w)
	return append(frame, `},"job_name":"`+testJob+`"}`...)
}

func benchmarkRounds(b *testing.B, clients int, binary bool) {
	ctx := klog.NewContext(context.Background(), klog.Background().V(1)) // quiet
	s, err := NewServer(ctx, ServerOptions{Job: testJob, MaxJSONMessageBytes: 64 << 20, Policy: Policy{Participants: clients, ExitRound: 1 << 30}})
	if err != nil {
		b.Fatal(err)
	}
	httpServer := httptest.NewServer(s)
	defer httpServer.Close()
	defer s.Close()
	url := "ws" + strings.TrimPrefix(httpServer.URL, "http") + s.Path()

	frames := make([][]byte, clients)
	for i := range frames {
		frames[i] = benchUpdate(b, fmt.Sprintf("c%03d", i), binary)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	dialer := websocket.Dialer{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	if binary {
		dialer.Subprotocols = []string{BinarySubprotocol}
	}
	// The frames were encoded before the memory baseline: what the idle
	// and peak figures count is the server's (and the raw clients' small
	// read buffers), not the clients' models.
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		id := fmt.Sprintf("c%03d", i)
		ws, _, err := dialer.Dial(url, http.Header{})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = ws.Close() }()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","client_id":"`+id+`"}`)); err != nil {
			b.Fatal(err)
		}
		conns[i] = ws
	}
	for s.connected() != clients {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	var idle runtime.MemStats
	runtime.ReadMemStats(&idle)

	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()

	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range b.N {
				kind := websocket.TextMessage
				if binary {
					kind = websocket.BinaryMessage
				}
				if err := ws.WriteMessage(kind, frames[i]); err != nil {
					errs <- err
					return
				}
				if err := readUntilAggregate(ws); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(stopSampling)
	<-sampled
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	elapsed := b.Elapsed().Seconds()
	updates := float64(clients * b.N)
	b.ReportMetric(updates/elapsed, "updates/s")
	b.ReportMetric(updates*float64(len(frames[0]))/elapsed/1e6, "MB/s")
	b.ReportMetric(float64(len(frames[0]))/1e6, "MB/update")
	b.ReportMetric(float64(idle.HeapInuse-before.HeapInuse)/float64(clients)/1024, "idle-KiB/client")
	if p := peak.Load(); p > before.HeapInuse {
		b.ReportMetric(float64(p-before.HeapInuse)/float64(clients)/1e6, "peak-MB/client")
	}
	if s.Stats().Round < b.N {
		b.Fatalf("only %d rounds closed for %d iterations", s.Stats().Round, b.N)
	}
}

// readUntilAggregate skips CLIENT_JOIN and subscribe echoes and discards the
// aggregate's body.
func readUntilAggregate(ws *websocket.Conn) error {
	for {
		kind, reader, err := ws.NextReader()
		if err != nil {
			return err
		}
		if kind == websocket.BinaryMessage {
			_, err := io.Copy(io.Discard, reader)
			return err
		}
		head := make([]byte, 24)
		n, _ := io.ReadFull(reader, head)
		if strings.HasPrefix(string(head[:n]), `{"type":"recv_weight"`) {
			_, err := io.Copy(io.Discard, reader)
			return err
		}
		if strings.HasPrefix(string(head[:n]), `{"type":"error"`) {
			rest, _ := io.ReadAll(reader)
			return fmt.Errorf("server refused the update: %s%s", head[:n], rest)
		}
	}
}
