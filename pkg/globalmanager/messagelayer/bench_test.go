package messagelayer

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sedna-go/sedna/pkg/channel"
)

// The benchmark's simulated LCs run in a child process (this test binary re-executed), so that
// the memory measured in the benchmark process is GM's alone.
const (
	benchClientsEnv = "SEDNA_BENCH_LC_CLIENTS"
	benchURLEnv     = "SEDNA_BENCH_GM_URL"
)

func TestMain(m *testing.M) {
	if n := os.Getenv(benchClientsEnv); n != "" {
		os.Exit(runBenchClients(n, os.Getenv(benchURLEnv)))
	}
	os.Exit(m.Run())
}

// runBenchClients connects n LCs that acknowledge every frame, prints "ready", and runs until
// stdin closes.
func runBenchClients(n, url string) int {
	count, err := strconv.Atoi(n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad client count:", err)
		return 2
	}
	dialer := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 30 * time.Second} //nolint:gosec // loopback benchmark against its own throwaway certificate
	var conns []*websocket.Conn
	for i := range count {
		ws, _, err := dialer.Dial(url, http.Header{"Authorization": {"Bearer token-" + strconv.Itoa(i)}})
		if err != nil {
			fmt.Fprintf(os.Stderr, "client %d: %v\n", i, err)
			return 1
		}
		conns = append(conns, ws)
		go func() {
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				f, err := channel.Decode(data, 0)
				if err != nil || f.Seq == 0 {
					continue
				}
				ack, _ := channel.Encode(&channel.Frame{Header: channel.Header{Operation: channel.OpAck}, Ack: f.Seq})
				if ws.WriteMessage(websocket.TextMessage, ack) != nil {
					return
				}
			}
		}()
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // wait for the parent to finish
	for _, ws := range conns {
		_ = ws.Close()
	}
	return 0
}

func gmMemory() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// benchChannel is a GM hub with 1,000 connected LCs in a child process.
type benchChannel struct {
	hub       *Hub
	mu        sync.Mutex
	published map[string]time.Time
	latencies []time.Duration
	acked     chan struct{}
	perNode   float64 // GM bytes per idle connected node
}

const benchNodes = 1000

func newBenchChannel(b *testing.B) *benchChannel {
	b.Helper()
	tokens := map[string]string{}
	for i := range benchNodes {
		tokens["token-"+strconv.Itoa(i)] = "node-" + strconv.Itoa(i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	bc := &benchChannel{hub: NewHub(Options{}, nil), published: map[string]time.Time{}, acked: make(chan struct{}, benchNodes)}
	bc.hub.onAck = func(node string, _ channel.Key, version uint64) {
		bc.mu.Lock()
		if t, ok := bc.published[node+"/"+strconv.FormatUint(version, 10)]; ok {
			bc.latencies = append(bc.latencies, time.Since(t))
		}
		bc.mu.Unlock()
		bc.acked <- struct{}{}
	}
	srv := httptest.NewTLSServer(NewServer(ctx, bc.hub, &StaticTokenAuthenticator{Tokens: tokens}))
	b.Cleanup(srv.Close)

	before := gmMemory()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), benchClientsEnv+"="+strconv.Itoa(benchNodes), benchURLEnv+"=wss"+strings.TrimPrefix(srv.URL, "https")+"/")
	stdin, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = child.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		b.Fatalf("clients did not come up: %q %v", line, err)
	}
	deadline := time.Now().Add(time.Minute)
	for len(bc.hub.ConnectedNodes()) < benchNodes {
		if time.Now().After(deadline) {
			b.Fatalf("only %d nodes connected", len(bc.hub.ConnectedNodes()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the empty snapshots' sync frames be acknowledged
	bc.perNode = float64(gmMemory()-before) / benchNodes
	return bc
}

var benchObject = []byte(`{"apiVersion":"sedna.io/v1alpha1","kind":"Dataset","metadata":{"name":"d","namespace":"default"},"spec":{"url":"/data/train.txt","format":"txt","nodeName":"n"}}`)

func (bc *benchChannel) publish(node string, version uint64) {
	bc.mu.Lock()
	bc.published[node+"/"+strconv.FormatUint(version, 10)] = time.Now()
	bc.mu.Unlock()
	// One resource per node: publishing a key to one node would unbind it from the others.
	bc.hub.Publish(channel.Key{Kind: "dataset", Namespace: "default", Name: "d-" + node}, version, benchObject, node)
}

func (bc *benchChannel) p99() float64 {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	slices.Sort(bc.latencies)
	if len(bc.latencies) == 0 {
		return 0
	}
	return float64(bc.latencies[len(bc.latencies)*99/100].Microseconds()) / 1000
}

// BenchmarkChannel1000Nodes connects 1,000 LCs over TLS websockets on loopback. Each iteration
// changes one resource on every node at once and waits for all 1,000 acknowledgements. It
// reports the aggregate frame rate, the p99 latency from Publish to the LC's ack under that burst,
// and GM's memory per idle connected node.
func BenchmarkChannel1000Nodes(b *testing.B) {
	bc := newBenchChannel(b)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		for n := range benchNodes {
			bc.publish("node-"+strconv.Itoa(n), uint64(i+1))
		}
		for range benchNodes {
			<-bc.acked
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchNodes)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(bc.p99(), "burst-p99-ms")
	b.ReportMetric(bc.perNode/1024, "KiB/idle-node")
}

// BenchmarkChannelPaced1000Nodes measures the latency of single changes spread over the 1,000
// connected nodes at a steady 2,000 changes per second — the shape of a fleet's everyday traffic.
func BenchmarkChannelPaced1000Nodes(b *testing.B) {
	bc := newBenchChannel(b)
	const interval = 500 * time.Microsecond
	allAcked := make(chan struct{})
	go func() {
		for range b.N {
			<-bc.acked
		}
		close(allAcked)
	}()
	b.ResetTimer()
	next := time.Now()
	for i := range b.N {
		next = next.Add(interval)
		time.Sleep(time.Until(next))
		bc.publish("node-"+strconv.Itoa(i%benchNodes), uint64(i/benchNodes+1))
	}
	<-allAcked
	b.StopTimer()
	b.ReportMetric(bc.p99(), "p99-ms")
}
