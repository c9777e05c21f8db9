package scale

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/gmclient"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// A shard is a process (test/scale/lcshard, started by the fleet) that runs some of the fleet's
// simulated LCs: a test process cannot hold thousands of LCs, each with its socket and its
// store, under a 20,000 open-file limit. The fleet requests every LC's token (bound to its KWOK
// pod) and writes it to the LC's directory; the shard opens each LC's store there and runs a real
// gmclient per LC. The two talk in JSON lines: the fleet writes a ShardConfig and then
// ShardCommands to the shard's stdin; the shard answers on its stdout with ShardMessages. The
// shard exits when its stdin closes (and, started with Pdeathsig, when the fleet's process dies).

// ShardLC is one LC of a shard.
type ShardLC struct {
	// Index is the LC's index in the fleet (its node is nodeName(Index), its Dataset ds-<Index>).
	Index int `json:"index"`
	// Dir holds the LC's token file ("token") and its store ("store.db").
	Dir string `json:"dir"`
}

// ShardConfig is the first line a shard reads.
type ShardConfig struct {
	URL    string    `json:"url"`
	CAFile string    `json:"caFile"`
	LCs    []ShardLC `json:"lcs"`
}

// ShardCommand is a request from the fleet.
type ShardCommand struct {
	// State asks for a ShardState; Metrics includes the LCs' counters (gathered from each LC's
	// registry: costlier).
	State   bool `json:"state,omitempty"`
	Metrics bool `json:"metrics,omitempty"`
	// Report has every LC report its dataset's count PerLC times (samples 1001, 1002, ...), the
	// first at Start (Unix ns) plus the LC's phase, one every Interval (0: all at once).
	Report   bool          `json:"report,omitempty"`
	PerLC    int           `json:"perLC,omitempty"`
	Start    int64         `json:"start,omitempty"`
	Interval time.Duration `json:"interval,omitempty"`
	Fleet    int           `json:"fleet,omitempty"`
	// Failover has the shard note every LC's successful dials and applied frames, answer
	// FailoverArmed, and then time each LC's first successful dial and first complete snapshot
	// (its dataset held and at least two more frames applied: the dataset and the sync) past
	// those counts, answering Failover once every LC has both.
	Failover bool `json:"failover,omitempty"`
	// Profile, with Failover, is a file the shard writes its CPU profile to, from the command
	// until every LC is timed.
	Profile string `json:"profile,omitempty"`
}

// ShardFailover is, per LC of the shard in its order, when (Unix ns) it first dialled GM
// successfully and first held a complete snapshot after the Failover command. The shard looks
// every 20 ms, at only the LCs that are connected and not yet done, with cheap counter reads:
// the times are at most one look late, and looking costs the machine little while thousands of
// LCs reconnect on it (the fleet's earlier way, a full state with every LC's metrics gathered
// every 50 ms, cost more CPU than the LCs' reconnects and was seconds late on loaded cores).
type ShardFailover struct {
	Connected []int64 `json:"connected"`
	Synced    []int64 `json:"synced"`
}

// ShardState is, per LC of the shard in its order, what the fleet measures.
type ShardState struct {
	Holds    []bool `json:"holds"`
	Workload []int  `json:"workload"`
	// With Metrics: frames applied, successful dials, and every dial by result.
	Applied []float64      `json:"applied,omitempty"`
	OKDials []float64      `json:"okDials,omitempty"`
	Dials   map[string]int `json:"dials,omitempty"`
}

// ShardSent is one report an LC enqueued.
type ShardSent struct {
	Index   int   `json:"index"`
	Samples int   `json:"samples"`
	At      int64 `json:"at"`
}

// ShardMessage is a line from the shard.
type ShardMessage struct {
	Ready bool        `json:"ready,omitempty"`
	Error string      `json:"error,omitempty"`
	State *ShardState `json:"state,omitempty"`
	Sent  *ShardSent  `json:"sent,omitempty"`
	// ReportsDone: every report of the Report command is enqueued.
	ReportsDone bool `json:"reportsDone,omitempty"`
	// FailoverArmed: the shard noted its LCs' counts for the Failover command.
	FailoverArmed bool           `json:"failoverArmed,omitempty"`
	Failover      *ShardFailover `json:"failover,omitempty"`
}

// RunShard is the shard's side: it starts the LCs of the config read from in and answers the
// commands until in closes or ctx ends.
func RunShard(ctx context.Context, in io.Reader, out io.Writer) error {
	logger := klog.FromContext(ctx)
	dec := json.NewDecoder(bufio.NewReader(in))
	var cfg ShardConfig
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("reading the shard's config: %w", err)
	}
	var outMu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m ShardMessage) {
		outMu.Lock()
		defer outMu.Unlock()
		if err := enc.Encode(m); err != nil {
			logger.Error(err, "Writing to the fleet")
		}
	}
	lcs := make([]*fleetLC, len(cfg.LCs))
	defer func() {
		for _, lc := range lcs {
			if lc != nil {
				_ = lc.store.Close()
			}
		}
	}()
	for i, c := range cfg.LCs {
		lc, err := newFleetLC(cfg.URL, cfg.CAFile, c)
		if err != nil {
			send(ShardMessage{Error: err.Error()})
			return err
		}
		lcs[i] = lc
	}
	lcCtx, cancel := context.WithCancel(klog.NewContext(ctx, logger.V(1)))
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before the wait
	for _, lc := range lcs {
		wg.Go(func() { lc.client.Run(lcCtx) })
	}
	send(ShardMessage{Ready: true})
	for {
		var cmd ShardCommand
		if err := dec.Decode(&cmd); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading a command: %w", err)
		}
		switch {
		case cmd.State:
			send(ShardMessage{State: shardState(lcs, cmd.Metrics)})
		case cmd.Failover:
			stopProfile, err := startCPUProfile(cmd.Profile)
			if err != nil {
				send(ShardMessage{Error: err.Error()})
				return err
			}
			track := armFailover(lcs)
			send(ShardMessage{FailoverArmed: true})
			wg.Go(func() {
				out := track(lcCtx)
				if err := stopProfile(); err != nil {
					send(ShardMessage{Error: err.Error()})
					return
				}
				if out != nil {
					send(ShardMessage{Failover: out})
				}
			})
		case cmd.Report:
			wg.Go(func() {
				shardReports(lcCtx, lcs, cfg.LCs, cmd, send)
				send(ShardMessage{ReportsDone: true})
			})
		}
	}
}

func shardState(lcs []*fleetLC, metrics bool) *ShardState {
	s := &ShardState{Holds: make([]bool, len(lcs)), Workload: make([]int, len(lcs))}
	if metrics {
		s.Applied, s.OKDials, s.Dials = make([]float64, len(lcs)), make([]float64, len(lcs)), map[string]int{}
	}
	for i, lc := range lcs {
		s.Holds[i] = lc.holds.Load()
		lc.mu.Lock()
		s.Workload[i] = len(lc.workload)
		lc.mu.Unlock()
		if !metrics {
			continue
		}
		families, err := lc.registry.Gather()
		if err != nil {
			continue
		}
		for _, fam := range families {
			name := fam.GetName()
			for _, m := range fam.GetMetric() {
				v := m.GetCounter().GetValue()
				switch {
				case strings.HasSuffix(name, "frames_applied_total"):
					s.Applied[i] += v
				case strings.HasSuffix(name, "dials_total"):
					for _, l := range m.GetLabel() {
						if l.GetName() == "result" {
							s.Dials[l.GetValue()] += int(v)
							if l.GetValue() == "ok" {
								s.OKDials[i] += v
							}
						}
					}
				}
			}
		}
	}
	return s
}

// startCPUProfile writes this process's CPU profile to path until the returned stop; an empty
// path profiles nothing.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close() // the error above is the one to report
		return nil, fmt.Errorf("starting the CPU profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing the CPU profile: %w", err)
		}
		return nil
	}, nil
}

// armFailover notes every LC's successful dials and applied frames now and returns the tracker
// of the failover that follows (see ShardCommand.Failover); it returns nil if ctx ends first.
func armFailover(lcs []*fleetLC) func(context.Context) *ShardFailover {
	n := len(lcs)
	dials, applied := make([]float64, n), make([]float64, n)
	for i, lc := range lcs {
		dials[i], applied[i] = lc.okDials(), lc.appliedFrames()
	}
	return func(ctx context.Context) *ShardFailover {
		out := &ShardFailover{Connected: make([]int64, n), Synced: make([]int64, n)}
		pending := n
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for pending > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			now := time.Now().UnixNano()
			for i, lc := range lcs {
				if out.Synced[i] != 0 || !lc.client.Connected() {
					continue
				}
				if out.Connected[i] == 0 && lc.okDials() > dials[i] {
					out.Connected[i] = now
				}
				if out.Connected[i] != 0 && lc.holds.Load() && lc.appliedFrames() >= applied[i]+2 {
					out.Synced[i] = now
					pending--
				}
			}
		}
		return out
	}
}

// okDials is the LC's successful dials so far.
func (lc *fleetLC) okDials() float64 { return counterValue(lc.dials, "ok") }

// appliedFrames is the frames from GM the LC applied so far (changed, unchanged or rejected).
func (lc *fleetLC) appliedFrames() float64 {
	return counterValue(lc.applied, "changed") + counterValue(lc.applied, "unchanged") + counterValue(lc.applied, "rejected")
}

// counterValue reads one counter of the client's vector (0 if the client registered none).
func counterValue(vec *prometheus.CounterVec, result string) float64 {
	if vec == nil {
		return 0
	}
	return testutil.ToFloat64(vec.WithLabelValues(result))
}

// shardReports has every LC of the shard report its dataset's count cmd.PerLC times, paced as
// the command says, and tells the fleet when each report was enqueued (before enqueueing it, so
// the fleet knows of it before GM's status can show it).
func shardReports(ctx context.Context, lcs []*fleetLC, cfg []ShardLC, cmd ShardCommand, send func(ShardMessage)) {
	var wg sync.WaitGroup
	start := time.Unix(0, cmd.Start)
	for i, lc := range lcs {
		index := cfg[i].Index
		wg.Go(func() {
			next := start
			if cmd.Interval > 0 && cmd.Fleet > 0 {
				next = start.Add(cmd.Interval * time.Duration(index) / time.Duration(cmd.Fleet))
			}
			for r := 1; r <= cmd.PerLC; r++ {
				if cmd.Interval > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(next)):
					}
					next = next.Add(cmd.Interval)
				}
				samples := 1000 + r
				send(ShardMessage{Sent: &ShardSent{Index: index, Samples: samples, At: time.Now().UnixNano()}})
				if _, err := gmclient.EnqueueReport(lc.store, lc.key, []byte(`{"numberOfSamples":`+strconv.Itoa(samples)+`}`)); err != nil {
					send(ShardMessage{Error: fmt.Sprintf("enqueueing a report: %v", err)})
					return
				}
				lc.client.Notify()
			}
		})
	}
	wg.Wait()
}

// newFleetLC opens the LC's store and creates its client with the shipped options.
func newFleetLC(url, caFile string, c ShardLC) (*fleetLC, error) {
	st, err := store.Open(filepath.Join(c.Dir, "store.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	lc := &fleetLC{store: st, registry: prometheus.NewRegistry(),
		key: channel.Key{Kind: "dataset", Namespace: fleetNamespace, Name: fmt.Sprintf("ds-%d", c.Index)}}
	lc.client, err = gmclient.New(gmclient.Options{URL: url, NodeName: nodeName(c.Index), TokenFile: filepath.Join(c.Dir, "token"),
		CAFile: caFile, Registerer: countersOnly{lc.registry, lc}}, st, lcHandler{lc})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return lc, nil
}

// countersOnly registers the client's counters but not its outbox collector, which reads the
// store on every gather, and keeps the dial and frame counters for the failover's cheap reads.
type countersOnly struct {
	prometheus.Registerer
	lc *fleetLC
}

func (r countersOnly) Register(c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(descs); close(descs) }()
	outbox := false
	for d := range descs {
		name := d.String()
		vec, _ := c.(*prometheus.CounterVec)
		switch {
		case strings.Contains(name, "outbox"):
			outbox = true
		case strings.Contains(name, `"sedna_lc_channel_dials_total"`):
			r.lc.dials = vec
		case strings.Contains(name, `"sedna_lc_channel_frames_applied_total"`):
			r.lc.applied = vec
		}
	}
	if outbox {
		return nil
	}
	return r.Registerer.Register(c)
}

// shardProcess is the fleet's side of one shard.
type shardProcess struct {
	lcs   []ShardLC
	pid   int
	stdin io.WriteCloser
	encMu sync.Mutex
	enc   *json.Encoder

	// states delivers the answers to State commands, in order.
	states chan *ShardState
	ready  chan struct{}
	// reportsDone counts the shard's finished Report commands.
	reportsDone chan struct{}
	// armed and failover deliver the answers to the Failover command.
	armed    chan struct{}
	failover chan *ShardFailover
	failed   atomic.Pointer[string]
	exited   chan struct{}
}

func (s *shardProcess) command(cmd ShardCommand) error {
	s.encMu.Lock()
	defer s.encMu.Unlock()
	return s.enc.Encode(cmd)
}

// state asks the shard for its state and waits for the answer.
func (s *shardProcess) state(metrics bool) (*ShardState, error) {
	s.encMu.Lock()
	defer s.encMu.Unlock()
	if err := s.enc.Encode(ShardCommand{State: true, Metrics: metrics}); err != nil {
		return nil, err
	}
	select {
	case st := <-s.states:
		return st, nil
	case <-s.exited:
		return nil, fmt.Errorf("shard (pid %d) exited: %s", s.pid, s.err())
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("shard (pid %d) did not answer within a minute", s.pid)
	}
}

func (s *shardProcess) err() string {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return "no error reported"
}

// envShardSize is how many LCs one shard process runs (default 1,000: with its socket and
// store, ~2 open files each, 2,000 in all: above the usual soft limit of 1,024, but Go raises
// the soft limit to the hard one at start, and the hard limit here is 20,000).
func envShardSize() int {
	if n, err := strconv.Atoi(os.Getenv("SCALE_LCS_PER_PROCESS")); err == nil && n > 0 {
		return n
	}
	return 1000
}
