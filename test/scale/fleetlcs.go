package scale

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
)

// fleet is the fleet's N simulated LCs, run by shard processes (shard.go).
type fleet struct {
	t      testing.TB
	n      int
	shards []*shardProcess
	// bin is the shards' binary; profiles are the CPU profiles they write over a failover.
	bin      string
	profiles []string

	// onSent receives the shards' report events while runReports runs.
	sentMu sync.Mutex
	onSent func(ShardSent)
}

// fleetState is every LC's state, by the LC's index.
type fleetState struct {
	holds    []bool
	workload []int
	applied  []float64
	okDials  []float64
	dials    map[string]int
}

// state asks every shard for its LCs' state (with their counters if metrics).
func (f *fleet) state(metrics bool) fleetState {
	out := fleetState{holds: make([]bool, f.n), workload: make([]int, f.n), applied: make([]float64, f.n),
		okDials: make([]float64, f.n), dials: map[string]int{}}
	states := make([]*ShardState, len(f.shards))
	errs := make([]error, len(f.shards))
	var wg sync.WaitGroup
	for i, s := range f.shards {
		wg.Go(func() { states[i], errs[i] = s.state(metrics) })
	}
	wg.Wait()
	for i, s := range f.shards {
		if errs[i] != nil {
			f.t.Errorf("asking a shard for its LCs' state: %v", errs[i])
			continue
		}
		st := states[i]
		for j, lc := range s.lcs {
			out.holds[lc.Index] = st.Holds[j]
			out.workload[lc.Index] = st.Workload[j]
			if metrics {
				out.applied[lc.Index] = st.Applied[j]
				out.okDials[lc.Index] = st.OKDials[j]
			}
		}
		for k, v := range st.Dials {
			out.dials[k] += v
		}
	}
	return out
}

func (f *fleet) holding() int {
	n := 0
	for _, h := range f.state(false).holds {
		if h {
			n++
		}
	}
	return n
}

// workloadHeld is how many of the generator's objects the LCs hold.
func (f *fleet) workloadHeld() int {
	n := 0
	for _, w := range f.state(false).workload {
		n += w
	}
	return n
}

// dialCounts is the LCs' dials by result.
func (f *fleet) dialCounts() map[string]int { return f.state(true).dials }

// armFailover has every shard note its LCs' counts (ShardCommand.Failover) and returns once all
// have; the shards then time each LC's reconnect and snapshot past those counts, each writing
// its CPU profile into profileDir until it has (failoverProfileTop).
func (f *fleet) armFailover(t testing.TB, profileDir string) {
	f.profiles = nil
	for i, s := range f.shards {
		profile := filepath.Join(profileDir, fmt.Sprintf("lc-shard-%d-failover-cpu.pprof", i))
		f.profiles = append(f.profiles, profile)
		require.NoError(t, s.command(ShardCommand{Failover: true, Profile: profile}))
	}
	for _, s := range f.shards {
		select {
		case <-s.armed:
		case <-s.exited:
			require.FailNow(t, "an LC shard exited", "shard (pid %d): %s", s.pid, s.err())
		case <-time.After(time.Minute):
			require.FailNow(t, "an LC shard did not note its LCs' counts within a minute", "pid %d", s.pid)
		}
	}
}

// failoverProfileTop is the top of the shards' CPU profiles over the failover, merged (`go tool
// pprof -top`); failoverDone must have returned.
func (f *fleet) failoverProfileTop(t testing.TB) string {
	out, err := exec.Command("go", append([]string{"tool", "pprof", "-top", "-nodecount=30", f.bin}, f.profiles...)...).CombinedOutput()
	require.NoError(t, err, "go tool pprof: %s", out)
	return string(out)
}

// failoverDone waits until every shard has timed every LC of the armed failover and returns
// when the last LC first dialled GM successfully and when the last one held its complete
// snapshot.
func (f *fleet) failoverDone(t testing.TB, timeout time.Duration) (connected, synced time.Time) {
	deadline := time.After(timeout)
	for _, s := range f.shards {
		select {
		case out := <-s.failover:
			for i := range out.Synced {
				connected = later(connected, time.Unix(0, out.Connected[i]))
				synced = later(synced, time.Unix(0, out.Synced[i]))
			}
		case <-s.exited:
			require.FailNow(t, "an LC shard exited during the failover", "shard (pid %d): %s", s.pid, s.err())
		case <-deadline:
			require.FailNow(t, "not every LC applied the new leader's snapshot", "within %s", timeout)
		}
	}
	return connected, synced
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// pids are the shard processes' IDs.
func (f *fleet) pids() map[string]int {
	out := map[string]int{}
	for i, s := range f.shards {
		out[fmt.Sprintf("lc-shard-%d", i)] = s.pid
	}
	return out
}

// rss is the shard processes' resident sets together.
func (f *fleet) rss(t testing.TB) uint64 {
	var sum uint64
	for _, s := range f.shards {
		sum += processRSS(t, s.pid)
	}
	return sum
}

// buildShard builds the shard command (test/scale/lcshard).
func buildShard(t testing.TB, dir string) string { return buildCommand(t, dir, "./test/scale/lcshard") }

// startLCs requests a token bound to each LC pod, writes it to the LC's directory, and starts
// the LCs in shard processes of envShardSize() LCs each; it returns once every shard has
// created its clients (they connect in the background).
func startLCs(ctx context.Context, t testing.TB, dir string, kube kubernetes.Interface, caFile, url string, n int) *fleet {
	expiry := int64(3600)
	lcs := make([]ShardLC, n)
	parallel(ctx, t, n, func(ctx context.Context, i int) error {
		pod, err := kube.CoreV1().Pods(fleetNamespace).Get(ctx, fmt.Sprintf("lc-%d", i), metav1.GetOptions{})
		if err != nil {
			return err
		}
		tr, err := kube.CoreV1().ServiceAccounts(fleetNamespace).CreateToken(ctx, lcAccount, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"sedna-gm"}, ExpirationSeconds: &expiry,
				BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("requesting the token of %s: %w", pod.Name, err)
		}
		lcDir := filepath.Join(dir, "lc", strconv.Itoa(i))
		if err := os.MkdirAll(lcDir, 0o700); err != nil {
			return err
		}
		lcs[i] = ShardLC{Index: i, Dir: lcDir}
		return os.WriteFile(filepath.Join(lcDir, "token"), []byte(tr.Status.Token), 0o600)
	})
	bin := buildShard(t, dir)
	f := &fleet{t: t, n: n, bin: bin}
	// At least two shards, so that a small fleet runs the path of a large one.
	size := min(envShardSize(), max(1, (n+1)/2))
	for chunk := range slices.Chunk(lcs, size) {
		f.shards = append(f.shards, startShard(t, dir, bin, len(f.shards), ShardConfig{URL: url, CAFile: caFile, LCs: chunk}, f))
	}
	for _, s := range f.shards {
		select {
		case <-s.ready:
		case <-s.exited:
			require.FailNow(t, "an LC shard exited", "shard (pid %d): %s", s.pid, s.err())
		case <-time.After(5 * time.Minute):
			require.FailNow(t, "an LC shard did not start its LCs within 5 minutes", "pid %d", s.pid)
		}
	}
	return f
}

// startShard starts one shard process; it dies with this process (Pdeathsig) and is stopped by
// closing its stdin when the test ends.
func startShard(t testing.TB, dir, bin string, index int, cfg ShardConfig, f *fleet) *shardProcess {
	log, err := os.Create(filepath.Join(dir, "logs", fmt.Sprintf("lc-shard-%d.log", index)))
	require.NoError(t, err)
	cmd := exec.Command(bin)
	cmd.Stderr = log
	if _, set := os.LookupEnv("GOGC"); !set {
		// A shard is a thousand nodes' LCs in one heap: with Go's default GOGC=100 its garbage
		// collector, which on a fleet each node runs for its own LC on its own cores, took 15 % of
		// the shards' CPU in the 5,000-node failover (docs/performance.md). A larger heap target
		// gives that CPU back to the simulated fleet's TLS handshakes; memory is plentiful here.
		cmd.Env = append(os.Environ(), "GOGC=400")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &shardProcess{lcs: cfg.LCs, pid: cmd.Process.Pid, stdin: stdin, enc: json.NewEncoder(stdin),
		states: make(chan *ShardState, 1), ready: make(chan struct{}), reportsDone: make(chan struct{}, 16),
		armed: make(chan struct{}, 1), failover: make(chan *ShardFailover, 1), exited: make(chan struct{})}
	go func() {
		defer close(s.exited)
		defer func() { _ = log.Close() }()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var m ShardMessage
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("shard %d wrote %q: %v", index, sc.Text(), err)
				continue
			}
			switch {
			case m.Error != "":
				s.failed.Store(&m.Error)
				t.Errorf("shard %d: %s", index, m.Error)
			case m.Ready:
				close(s.ready)
			case m.State != nil:
				s.states <- m.State
			case m.Sent != nil:
				f.sentMu.Lock()
				if f.onSent != nil {
					f.onSent(*m.Sent)
				}
				f.sentMu.Unlock()
			case m.ReportsDone:
				s.reportsDone <- struct{}{}
			case m.FailoverArmed:
				s.armed <- struct{}{}
			case m.Failover != nil:
				s.failover <- m.Failover
			}
		}
		if err := cmd.Wait(); err != nil && s.failed.Load() == nil {
			msg := err.Error()
			s.failed.Store(&msg)
		}
	}()
	s.encMu.Lock()
	err = s.enc.Encode(cfg)
	s.encMu.Unlock()
	require.NoError(t, err, "sending shard %d its config", index)
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-s.exited:
		case <-time.After(time.Minute):
			t.Errorf("shard %d (pid %d) did not exit within a minute of its stdin closing; killing it", index, s.pid)
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

// runReports has every LC report its dataset's sample count perLC times (paced to rate reports
// per second over the fleet, or all at once), and measures each report from its enqueue in the
// LC's outbox until GM's status shows it (or a later count of the same dataset).
func runReports(ctx context.Context, t testing.TB, sedna sednaclientset.Interface, f *fleet, perLC int, rate float64) (int, float64, time.Duration) {
	type sent struct {
		at      time.Time
		samples int
	}
	type seenStatus struct {
		at      time.Time
		samples int
	}
	sentAt := make([][]sent, f.n)
	last := make([]seenStatus, f.n)
	seen := make([]int, f.n)
	var mu sync.Mutex
	latencies := []time.Duration{}
	total := f.n * perLC
	all := make(chan struct{})
	// match counts LC i's reports that its dataset's last observed status shows; under mu.
	match := func(i int) {
		for seen[i] < len(sentAt[i]) && last[i].samples > 0 && sentAt[i][seen[i]].samples <= last[i].samples {
			latencies = append(latencies, max(0, last[i].at.Sub(sentAt[i][seen[i]].at)))
			seen[i]++
			if len(latencies) == total {
				close(all)
			}
		}
	}
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := sedna.SednaV1alpha1().Datasets(fleetNamespace).Watch(watchCtx, metav1.ListOptions{})
	require.NoError(t, err)
	go func() {
		for ev := range w.ResultChan() {
			ds, ok := ev.Object.(*sednav1.Dataset)
			if !ok {
				continue
			}
			i, err := strconv.Atoi(strings.TrimPrefix(ds.Name, "ds-"))
			if err != nil || i >= f.n {
				continue
			}
			samples := ds.Status.NumberOfSamples
			mu.Lock()
			if samples > last[i].samples {
				last[i] = seenStatus{at: time.Now(), samples: samples}
				match(i)
			}
			mu.Unlock()
		}
	}()
	// The shard tells of each report before enqueueing it; the status may be observed before
	// the message arrives, so both sides match.
	f.sentMu.Lock()
	f.onSent = func(s ShardSent) {
		mu.Lock()
		defer mu.Unlock()
		sentAt[s.Index] = append(sentAt[s.Index], sent{at: time.Unix(0, s.At), samples: s.Samples})
		match(s.Index)
	}
	f.sentMu.Unlock()
	defer func() {
		f.sentMu.Lock()
		f.onSent = nil
		f.sentMu.Unlock()
	}()
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(f.n) / rate * float64(time.Second))
	}
	start := time.Now()
	for _, s := range f.shards {
		require.NoError(t, s.command(ShardCommand{Report: true, PerLC: perLC, Start: start.UnixNano(), Interval: interval, Fleet: f.n}))
	}
	for _, s := range f.shards {
		select {
		case <-s.reportsDone:
		case <-s.exited:
			require.FailNow(t, "an LC shard exited during the reports", "pid %d: %s", s.pid, s.err())
		}
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		t.Errorf("not every report reached the status within 5 minutes")
	}
	elapsed := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latencies)
	var p99 time.Duration
	if len(latencies) > 0 {
		p99 = latencies[len(latencies)*99/100]
	}
	return len(latencies), float64(len(latencies)) / elapsed.Seconds(), p99
}
