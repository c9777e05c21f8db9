package messagelayer

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	// Like gmclient: the connection is dialled under a channel.BatchConn, the reader hands the
	// sequence numbers to the writer, and the writer sends the acks that are waiting in one write.
	dialer := websocket.Dialer{
		TLSClientConfig:  &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback benchmark against its own throwaway certificate
		HandshakeTimeout: 30 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return channel.NewBatchConn(conn), nil
		},
	}
	var conns []*websocket.Conn
	for i := range count {
		ws, _, err := dialer.Dial(url, http.Header{"Authorization": {"Bearer token-" + strconv.Itoa(i)}})
		if err != nil {
			fmt.Fprintf(os.Stderr, "client %d: %v\n", i, err)
			return 1
		}
		conns = append(conns, ws)
		batch := ws.NetConn().(*tls.Conn).NetConn().(*channel.BatchConn)
		acks := make(chan uint64, 64)
		go func() {
			defer close(acks)
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				f, err := channel.Decode(data, 0)
				if err != nil || f.Seq == 0 {
					continue
				}
				acks <- f.Seq
			}
		}()
		go func() {
			var buf []byte
			for seq := range acks {
				batch.Hold()
				for more := true; more; {
					buf, _ = channel.AppendEncode(buf[:0], &channel.Frame{Header: channel.Header{Operation: channel.OpAck}, Ack: seq})
					if ws.WriteMessage(websocket.TextMessage, buf) != nil {
						return
					}
					select {
					case s, ok := <-acks:
						seq, more = s, ok
					default:
						more = false
					}
				}
				if batch.Flush() != nil {
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
	childPID  int
}

// cpuTime is the CPU time (user and system) GM's process and the LCs' process have used so far.
// Divided by the frames of a run it is the cost of a frame on this machine however busy its
// cores are with other work, which the wall-clock figures are not.
func (bc *benchChannel) cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(bc.childPID) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields 14 and 15 (utime, stime) in clock ticks, counted after the command name's ')'.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ticks += v
	}
	const clockTicks = 100 // USER_HZ on Linux
	return self + time.Duration(ticks)*time.Second/clockTicks
}

// reportCPU reports the CPU time per frame of both processes since cpu0, and the frame rate two
// otherwise idle cores would sustain at that cost.
func (bc *benchChannel) reportCPU(b *testing.B, cpu0 time.Duration, frames int) {
	perFrame := (bc.cpuTime(b) - cpu0) / time.Duration(frames)
	b.ReportMetric(float64(perFrame.Nanoseconds())/1000, "cpu-µs/frame")
	b.ReportMetric(2*float64(time.Second)/float64(perFrame), "frames/s-on-2-idle-cores")
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
	bc := &benchChannel{hub: NewHub(Options{}, nil), published: map[string]time.Time{}, acked: make(chan struct{}, 10*benchNodes)}
	bc.hub.onAck = func(_ string, key channel.Key, version uint64) {
		bc.mu.Lock()
		if t, ok := bc.published[key.Name+"/"+strconv.FormatUint(version, 10)]; ok {
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
	bc.childPID = child.Process.Pid
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

func (bc *benchChannel) publish(node string, version uint64) { bc.publishOne(node, 0, version) }

// publishOne changes resource r of node to version.
func (bc *benchChannel) publishOne(node string, r int, version uint64) {
	name := "d-" + node + "-" + strconv.Itoa(r)
	bc.mu.Lock()
	bc.published[name+"/"+strconv.FormatUint(version, 10)] = time.Now()
	bc.mu.Unlock()
	// Resources of their own per node: publishing a key to one node would unbind it from the others.
	bc.hub.Publish(channel.Key{Kind: "dataset", Namespace: "default", Name: name}, version, benchObject, node)
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
// GM's memory per idle connected node, and the CPU time both processes spent per frame.
func BenchmarkChannel1000Nodes(b *testing.B) { benchBurst(b, 1) }

// BenchmarkChannel1000Nodes10Each is the same with ten resources changed on every node at once
// (10,000 frames per iteration): the shape of a snapshot after GM restarts, where a node has
// several frames queued.
func BenchmarkChannel1000Nodes10Each(b *testing.B) { benchBurst(b, 10) }

func benchBurst(b *testing.B, perNode int) {
	bc := newBenchChannel(b)
	b.ResetTimer()
	cpu0 := bc.cpuTime(b)
	start := time.Now()
	for i := range b.N {
		for r := range perNode {
			for n := range benchNodes {
				bc.publishOne("node-"+strconv.Itoa(n), r, uint64(i+1))
			}
		}
		for range benchNodes * perNode {
			<-bc.acked
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	frames := b.N * benchNodes * perNode
	b.ReportMetric(float64(frames)/elapsed.Seconds(), "frames/s")
	bc.reportCPU(b, cpu0, frames)
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
