package chaos

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
	"github.com/sedna-go/sedna/test/netns"
)

// Kind is a kind of fault.
type Kind string

const (
	KillLC           Kind = "kill -9 LC"
	KillGM           Kind = "kill -9 GM (leader)"
	KillWorker       Kind = "kill -9 worker (mnist-cloud)"
	RestartAPIServer Kind = "restart kube-apiserver"
	RestartEtcd      Kind = "restart etcd"
	// PartitionEdge cuts every LC's link to GM (Config.Relay) for 1 s to Config.MaxPartition.
	PartitionEdge Kind = "edge partition (relay)"
	// PartitionLink takes one edge node's link down (Config.Network) for 1 s to
	// Config.MaxPartition: the node's LC, workers and local clients keep talking to each other,
	// nothing crosses to the cloud.
	PartitionLink Kind = "edge partition (link down)"
	// FillStore fills the file system of one edge node's LC store (a tmpfs, Config.FullDisk)
	// for 1 s to 30 s, then frees it.
	FillStore Kind = "ENOSPC on an LC store"
	// PartitionTransition waits (up to 15 s) for the incremental learning job's stage or stage
	// state to change, then takes its node's link down at once, for 1 s to Config.MaxPartition.
	PartitionTransition Kind = "edge partition at an IL stage transition (link down)"
	// FillWhileCut is the campaign's first fault when Config.FullDisk: edge node 1's link down
	// and its store full for 10 s at once, so its LC must queue reports it cannot send and its
	// store must grow (later fills may find room inside the store file that a drained backlog
	// freed, and refuse nothing).
	FillWhileCut Kind = "ENOSPC on an LC store while its node is cut off (the first fault, 10 s)"
	// KillAggregator SIGKILLs the aggregation worker of the federated learning job running now
	// (the process of the cloud node's pod); the pod's restart policy restarts it and it resumes
	// from its checkpoint.
	KillAggregator Kind = "kill -9 aggregator (federated learning)"
	// PartitionRound waits (up to 15 s) for the federated learning job's round to advance, then
	// takes one of its trainers' nodes' link down at once, while the new round is open, for 1 s
	// to Config.MaxPartition.
	PartitionRound Kind = "edge partition at an open FL round (link down)"
	// KillKB SIGKILLs the knowledge base (sedna-kb, the process of build/kb's pod on the cloud
	// node) when the lifelong learning example runs; its pod's restart policy restarts it on the
	// same claim.
	KillKB Kind = "kill -9 knowledge base (lifelong learning)"
	// PartitionSnapshot resets one edge node's connection to GM at the relay and takes the
	// node's link down while GM sends it the snapshot of its next connection (snapshot.go), for
	// 1 s to Config.MaxPartition; counted only when the logs show the snapshot interrupted.
	PartitionSnapshot Kind = "edge partition during a snapshot (link down)"
	// PartitionSnapshotMissed is a PartitionSnapshot whose cut the logs do not show inside the
	// snapshot: a partition all the same, not claimed as one during a snapshot.
	PartitionSnapshotMissed Kind = "edge partition aimed at a snapshot that missed it (link down)"
	// FreezeLC stops one LC with SIGSTOP for 1 s to 20 s: the fallback partition when no relay
	// runs (it also cuts the LC off from its workers).
	FreezeLC Kind = "edge partition (SIGSTOP of LC)"
)

// jiName is the example's service name.
const jiName = "mnist-ji"

// ilBound bounds the wait for the incremental learning job to end a round after the faults.
const ilBound = 5 * time.Minute

// Config configures Run.
type Config struct {
	// Namespace the example runs in; it must exist.
	Namespace string
	Seed      uint64
	// Duration bounds the injection phase; Faults, if positive, ends it earlier.
	Duration time.Duration
	Faults   int
	// MaxPartition bounds one edge partition; default 2 min.
	MaxPartition time.Duration
	// Relay, when set, is what the LCs dial GM through; partitions cut it unless Network is
	// set. Neither: FreezeLC.
	Relay *Relay
	// Network, when set, holds the edge nodes' namespaces (localsedna.Options.EdgeNetwork):
	// partitions take a node's link down (PartitionLink), one node at a time each, and the load
	// is sent from inside the first edge node's namespace, as a client on that node would.
	Network *netns.Network
	// FullDisk: the edge nodes' stores are on small file systems of their own
	// (localsedna.Options.EdgeStoreSize), and FillStore is one of the faults.
	FullDisk bool
	// Standby: a standby GM runs (localsedna.StartStandbyGM), so killing the leader fails over
	// and the killed GM comes back later as the standby.
	Standby bool
	// IncrementalLearning runs the incremental learning example on the last edge node during the
	// campaign (fed batch after batch, so rounds go train → eval → deploy under the faults) and
	// checks that it ends a round after the last fault healed.
	IncrementalLearning bool
	// FederatedLearning runs the federated learning example (trainers on edge nodes 1–3, the
	// aggregator on the cloud node) during the campaign, one job after another, and checks that
	// every job started ends, Succeeded with its accuracy or with a Failed condition saying why.
	// It needs 3 edge nodes; with Network, PartitionRound is one of the faults.
	FederatedLearning bool
	// LifelongLearning runs the lifelong learning example on edge node 2 during the campaign (its
	// three tasks learned one after another, each new one streamed to the inference worker as it
	// learned the last), KillKB is one of the faults, and the check wants every task given
	// learned or a reason, status.knowledgeBase matching the knowledge base, and the knowledge
	// base's index intact after its kills.
	LifelongLearning bool
	// Converge bounds the wait for status to converge after the last fault heals; default 3 min.
	Converge time.Duration
	// Logf prints progress (t.Logf).
	Logf func(format string, args ...any)
}

// Result is what a campaign did and saw.
type Result struct {
	Seed     uint64
	Faults   map[Kind]int
	Injected int
	// Duration of the injection phase; Total includes set-up, healing and the checks.
	Duration, Total time.Duration
	// Converged is how long status took to match the truth after the last fault healed.
	Converged time.Duration
	// GMExits counts GMs that exited without a kill (they lost the Lease, e.g. while the
	// apiserver was down past the renew deadline, and exit by design) and were restarted, as
	// GM's Deployment would.
	GMExits int
	// Partitions says how edge partitions were made (network namespaces or the relay).
	Partitions string
	// FullStoreRefusals counts worker reports the LCs refused because their store's file system
	// was full (their logs' "Queueing a worker report failed ... no space left on device").
	FullStoreRefusals int
	// Reports sums up the test workers' reports (sent, accepted, refused).
	Reports string
	// IL says what the incremental learning job did.
	IL string
	// FL says how each federated learning job ended.
	FL string
	// LL says what the lifelong learning job did.
	LL string
	// Snapshots says how many partitions during a snapshot interrupted one and how many missed.
	Snapshots string
	// Watched names the workers whose pods the watch saw.
	Watched string
	Rows    []Row
}

// Row is one invariant: what was expected and what was seen.
type Row struct {
	Invariant, Want, Got string
	OK                   bool
}

// Failed lists the invariants that did not hold.
func (r *Result) Failed() []Row {
	var out []Row
	for _, row := range r.Rows {
		if !row.OK {
			out = append(out, row)
		}
	}
	return out
}

// Table prints the faults and the invariants.
func (r *Result) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d faults in %s (total %s, status converged %s after the last fault healed)\n",
		r.Seed, r.Injected, r.Duration.Round(time.Second), r.Total.Round(time.Second), r.Converged.Round(100*time.Millisecond))
	kinds := make([]string, 0, len(r.Faults))
	for k := range r.Faults {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "GMs that exited on their own (lost Lease) and were restarted as their Deployment would: %d\n", r.GMExits)
	if r.Partitions != "" {
		fmt.Fprintf(&b, "edge partitions: %s\n", r.Partitions)
	}
	if r.Reports != "" {
		fmt.Fprintf(&b, "%s\n", r.Reports)
	}
	if r.IL != "" {
		fmt.Fprintf(&b, "%s\n", r.IL)
	}
	if r.FL != "" {
		fmt.Fprintf(&b, "%s\n", r.FL)
	}
	if r.LL != "" {
		fmt.Fprintf(&b, "%s\n", r.LL)
	}
	if r.Snapshots != "" {
		fmt.Fprintf(&b, "%s\n", r.Snapshots)
	}
	if r.Watched != "" {
		fmt.Fprintf(&b, "%s\n", r.Watched)
	}
	if r.Faults[FillStore] > 0 {
		fmt.Fprintf(&b, "worker reports refused by an LC whose store was full (answered with status 503 naming ENOSPC): %d\n", r.FullStoreRefusals)
	}
	fmt.Fprintf(&b, "| fault | count |\n|---|---|\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "| %s | %d |\n", k, r.Faults[Kind(k)])
	}
	fmt.Fprintf(&b, "\n| invariant | want | got | holds |\n|---|---|---|---|\n")
	for _, row := range r.Rows {
		ok := "yes"
		if !row.OK {
			ok = "**NO**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.Invariant, row.Want, row.Got, ok)
	}
	return b.String()
}

// campaign is one Run's state.
type campaign struct {
	s     *localsedna.Sedna
	cfg   Config
	res   *Result
	rng   *rand.Rand
	logf  func(string, ...any)
	start time.Time

	mu      sync.Mutex
	faults  map[Kind]int
	lcKills map[string]int // per node
	n       int

	// gmDown holds the GM slots the campaign killed and has not restarted yet; any other GM
	// that is not running exited on its own and is restarted by superviseGMs.
	gmDown   map[localsedna.GMSlot]bool
	gmExits  int // GM exits without a kill (a lost Lease: GM exits, its Deployment restarts it)
	stopSupv chan struct{}
	supvDone chan struct{}

	bg sync.WaitGroup // partitions and GM restarts running in the background
	// partitioned is set while an edge partition runs.
	partitioned sync.Mutex
	// linkDown and storeFull are held while a node's link is down or its store is full.
	linkDown, storeFull map[string]*sync.Mutex
	// fills counts FillStore faults per node.
	fills map[string]int
	// linksDown counts PartitionLink faults; linksCut those verified to cut the node off.
	linksDown, linksCut int
	// longCuts are the partitions of at least notReadyPartition; controlPlane the API server
	// and etcd restarts, from the restart's start until the process was back.
	longCuts     []longCut
	controlPlane []interval
	// il is the incremental learning example, when Config.IncrementalLearning.
	il *ilRun
	// fl is the federated learning example, when Config.FederatedLearning.
	fl *flRun
	// ll is the lifelong learning example, when Config.LifelongLearning.
	ll *llRun
	// snapshotCuts are the PartitionSnapshot faults; countAs is the kind the last one counts as.
	snapshotCuts []snapshotCut
	// snapshotSkips counts PartitionSnapshot faults that found no snapshot to cut.
	snapshotSkips int
	countAs       Kind
}

// Run deploys the joint inference example into cfg.Namespace on s, loads it, injects faults
// until cfg.Duration passes or cfg.Faults were injected, heals everything, and checks the
// invariants. An error means the campaign could not run; invariants that did not hold are
// Result rows with OK false. Cancelling ctx ends the injection early; Run still heals.
func Run(ctx context.Context, s *localsedna.Sedna, cfg Config) (*Result, error) {
	if cfg.MaxPartition <= 0 {
		cfg.MaxPartition = 2 * time.Minute
	}
	if cfg.Converge <= 0 {
		cfg.Converge = 3 * time.Minute
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	c := &campaign{s: s, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5ed4a)), logf: cfg.Logf,
		faults: map[Kind]int{}, lcKills: map[string]int{}, start: time.Now(),
		gmDown: map[localsedna.GMSlot]bool{}, stopSupv: make(chan struct{}), supvDone: make(chan struct{}),
		linkDown: map[string]*sync.Mutex{}, storeFull: map[string]*sync.Mutex{}, fills: map[string]int{}}
	for _, n := range s.Nodes {
		if n.Edge {
			c.linkDown[n.Name], c.storeFull[n.Name] = &sync.Mutex{}, &sync.Mutex{}
		}
	}
	go c.superviseGMs()
	defer func() {
		close(c.stopSupv)
		<-c.supvDone
	}()
	res := &Result{Seed: cfg.Seed}
	c.res = res
	c.logf("chaos: seed %d (set CHAOS_SEED=%d to replay the same choices)", cfg.Seed, cfg.Seed)

	if out, err := s.InstallMNISTModels(ctx); err != nil {
		return nil, fmt.Errorf("installing the MNIST models: %w\n%s", err, out)
	}
	example := filepath.Join(localcluster.RepoRoot(), "examples", "joint_inference", "mnist", "mnist-joint-inference.yaml")
	if out, err := s.Kubectl(ctx, "apply", "--server-side", "-n", cfg.Namespace, "-f", example); err != nil {
		return nil, fmt.Errorf("applying %s: %w\n%s", example, err, out)
	}
	if err := c.deployReporters(ctx); err != nil {
		return nil, err
	}
	watch, err := startWatch(ctx, s, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	defer watch.stop()
	if cfg.IncrementalLearning {
		if c.il, err = c.startIL(ctx); err != nil {
			return nil, err
		}
		defer c.il.stopFeeding() // when Run returns early; a no-op after the checks stopped it
	}
	if cfg.FederatedLearning {
		if c.fl, err = c.startFL(ctx); err != nil {
			return nil, err
		}
		defer c.fl.stop() // when Run returns early; a no-op after it was stopped
	}
	if cfg.LifelongLearning {
		if c.ll, err = c.startLL(ctx); err != nil {
			return nil, err
		}
		defer c.ll.stop() // when Run returns early; a no-op after it was stopped
	}
	if err := c.waitReady(ctx, 3*time.Minute); err != nil {
		return nil, err
	}
	restartsBefore, err := c.lcRestarts(ctx)
	if err != nil {
		return nil, err
	}
	edge, _ := s.Node(localsedna.EdgeNodeName(1))
	var dial func(ctx context.Context, network, address string) (net.Conn, error)
	if cfg.Network != nil {
		dial = netns.Dialer(edge.NetNS)
	}
	load := startLoad("http://"+edge.IP+":8000", cfg.Seed, dial)

	injectStart := time.Now()
	injectErr := c.openingFill(ctx)
	if injectErr == nil {
		injectErr = c.openingSnapshotCut(ctx)
	}
	if injectErr == nil {
		injectErr = c.inject(ctx)
	}
	c.bg.Wait() // every partition healed, every killed GM restarted
	res.Duration = time.Since(injectStart)
	healedAt := time.Now()
	answered, loadErrors := load.stop()
	if c.il != nil {
		c.il.stopFeeding()
	}
	if c.fl != nil {
		c.fl.stop() // no new job; the one running is the check's
	}
	if c.ll != nil {
		c.ll.stop() // no new stream; the round under way is the check's
		endedCtx, cancelEnded := context.WithTimeout(context.Background(), 30*time.Second)
		c.ll.faultsEnded(endedCtx, injectStart, healedAt)
		cancelEnded()
	}
	// With fresh bounds: the reporters are stopped even after an interrupt.
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 2*time.Minute)
	reportersErr := c.stopReporters(stopCtx)
	cancelStop()
	c.logf("chaos: %d faults injected in %s; the edge answered %d inferences (%d requests failed); checking the invariants",
		c.n, res.Duration.Round(time.Second), answered, loadErrors)
	if injectErr != nil && ctx.Err() == nil {
		return nil, injectErr
	}
	// The checks run even when ctx was cancelled (interrupted): with a fresh bound.
	checkCtx, cancel := context.WithTimeout(context.Background(), cfg.Converge+max(ilBound, flBound, llBound)+time.Minute)
	defer cancel()
	c.check(checkCtx, res, watch, answered, restartsBefore, healedAt, reportersErr)
	c.mu.Lock()
	res.GMExits = c.gmExits
	c.mu.Unlock()
	res.FullStoreRefusals = c.fullStoreRefusals(checkCtx)
	switch {
	case cfg.Network != nil:
		res.Partitions = "network namespaces, a node's veth taken down"
	case cfg.Relay != nil:
		res.Partitions = "TCP relay between the LCs and GM (no network namespaces)"
	default:
		res.Partitions = "SIGSTOP of an LC"
	}
	res.Faults, res.Injected, res.Total = c.faults, c.n, time.Since(c.start)
	return res, injectErr
}

// inject runs the fault loop.
func (c *campaign) inject(ctx context.Context) error {
	kinds := []Kind{KillLC, KillGM, KillWorker, RestartAPIServer, RestartEtcd}
	if c.fl != nil {
		kinds = append(kinds, KillAggregator)
	}
	if c.ll != nil {
		kinds = append(kinds, KillKB)
	}
	if c.cfg.FullDisk {
		kinds = append(kinds, FillStore)
	}
	if c.cfg.Network != nil {
		// Twice the weight: partitions are what network namespaces are for.
		kinds = append(kinds, PartitionLink, PartitionLink)
		if c.il != nil {
			kinds = append(kinds, PartitionTransition)
		}
		if c.fl != nil {
			kinds = append(kinds, PartitionRound)
		}
		if c.cfg.Relay != nil {
			kinds = append(kinds, PartitionSnapshot)
		}
	} else if c.cfg.Relay != nil {
		kinds = append(kinds, PartitionEdge)
	} else {
		kinds = append(kinds, FreezeLC)
	}
	deadline := time.Now().Add(c.cfg.Duration)
	for i := 1; c.cfg.Faults <= 0 || i <= c.cfg.Faults; i++ {
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return ctx.Err()
		}
		kind := kinds[c.rng.IntN(len(kinds))]
		if kind == PartitionEdge || kind == FreezeLC {
			if !c.partitioned.TryLock() {
				kind = KillLC // one partition at a time
			} else {
				c.partitioned.Unlock()
			}
		}
		c.countAs = kind
		detail, err := c.injectOne(ctx, kind, time.Until(deadline))
		kind = c.countAs
		if errors.Is(err, errSkip) {
			i--
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("fault %d (%s): %w", i, kind, err)
		}
		c.mu.Lock()
		c.faults[kind]++
		c.n++
		c.mu.Unlock()
		c.logf("chaos: fault %d at %s: %s %s", i, time.Since(c.start).Round(100*time.Millisecond), kind, detail)
		// 0.2 s to 3 s between faults: some land while the previous one is still healing.
		gap := time.Duration(200+c.rng.IntN(2800)) * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(gap):
		}
	}
	return nil
}

func (c *campaign) injectOne(ctx context.Context, kind Kind, left time.Duration) (string, error) {
	s := c.s
	edgeNode := localsedna.EdgeNodeName(1 + c.rng.IntN(len(s.Nodes)-1))
	switch kind {
	case KillLC:
		pid, err := s.KillLC(edgeNode)
		if err != nil {
			// Between a kill and the restart there is no LC process: not a fault to count.
			return "", c.retryLater(ctx, err)
		}
		c.mu.Lock()
		c.lcKills[edgeNode]++
		c.mu.Unlock()
		return fmt.Sprintf("on %s (pid %d)", edgeNode, pid), nil
	case KillWorker:
		cloud, _ := s.Node(localsedna.CloudNode)
		pid, err := workerPID(cloud.Root, "mnist-cloud")
		if err != nil {
			return "", c.retryLater(ctx, err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return "", err
		}
		return fmt.Sprintf("(pid %d)", pid), nil
	case KillAggregator:
		j := c.fl.current()
		if j == nil {
			return "", c.retryLater(ctx, errors.New("no federated learning job is running"))
		}
		cloud, _ := s.Node(localsedna.CloudNode)
		pid, err := workerPID(cloud.Root, "sedna-aggregator")
		if err != nil {
			// Not started yet, between a kill and its restart, or done.
			return "", c.retryLater(ctx, err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return "", err
		}
		c.fl.note(j, func(j *flJob) { j.aggregatorKills++ })
		return fmt.Sprintf("of %s (pid %d)", j.name, pid), nil
	case KillKB:
		detail, err := c.ll.killKB(ctx)
		if err != nil {
			// Between a kill and its restart there is no knowledge base process.
			return "", c.retryLater(ctx, err)
		}
		return detail, nil
	case KillGM:
		return c.killGM(ctx)
	case RestartAPIServer, RestartEtcd:
		name := "kube-apiserver"
		if kind == RestartEtcd {
			name = "etcd"
		}
		kill := c.rng.IntN(2) == 0
		restart := interval{from: time.Now()}
		err := s.Cluster.Restart(ctx, name, kill)
		restart.to = time.Now()
		c.mu.Lock()
		c.controlPlane = append(c.controlPlane, restart)
		c.mu.Unlock()
		if err != nil {
			return "", err
		}
		if kill {
			return "(SIGKILL)", nil
		}
		return "(SIGTERM)", nil
	case PartitionEdge:
		d := c.partitionLength(c.cfg.MaxPartition, left)
		mode := Reset
		if c.rng.IntN(2) == 0 {
			mode = Blackhole
		}
		c.partitioned.Lock()
		c.cfg.Relay.Partition(mode)
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			defer c.partitioned.Unlock()
			defer c.cfg.Relay.Heal()
			sleep(ctx, d)
		}()
		return fmt.Sprintf("for %s (%s)", d.Round(100*time.Millisecond), mode), nil
	case PartitionLink, PartitionTransition, PartitionRound:
		i := 1 + c.rng.IntN(len(s.Nodes)-1)
		switch kind {
		case PartitionTransition:
			i = c.il.nodeIdx
		case PartitionRound:
			i = c.fl.nodeIdx[c.rng.IntN(len(c.fl.nodeIdx))]
		}
		node := localsedna.EdgeNodeName(i)
		d := c.partitionLength(c.cfg.MaxPartition, left)
		lock := c.linkDown[node]
		if !lock.TryLock() {
			return "", c.retryLater(ctx, fmt.Errorf("the link of %s is already down", node))
		}
		transition := ""
		if kind == PartitionTransition {
			var ok bool
			if transition, ok = c.il.waitTransition(ctx, 15*time.Second); !ok {
				lock.Unlock()
				return "", c.retryLater(ctx, errors.New("no stage transition within 15 s"))
			}
			transition = " at " + transition
		}
		if kind == PartitionRound {
			j, round, ok := c.fl.waitRoundOpen(ctx, 15*time.Second)
			if !ok {
				lock.Unlock()
				return "", c.retryLater(ctx, errors.New("no federated learning round opened within 15 s"))
			}
			c.fl.note(j, func(j *flJob) { j.partitionsAtOpen++ })
			transition = fmt.Sprintf(" while round %d of %s is open", round, j.name)
		}
		if err := c.cfg.Network.Down(ctx, i); err != nil {
			lock.Unlock()
			return "", err
		}
		c.linkCutOff(ctx, i, node, d, lock)
		return fmt.Sprintf("of %s for %s%s", node, d.Round(100*time.Millisecond), transition), nil
	case PartitionSnapshot:
		i := 1 + c.rng.IntN(len(s.Nodes)-1)
		kind, detail, err := c.partitionSnapshot(ctx, i, c.partitionLength(c.cfg.MaxPartition, left))
		c.countAs = kind
		return detail, err
	case FillStore:
		d := c.partitionLength(30*time.Second, left)
		lock := c.storeFull[edgeNode]
		if !lock.TryLock() {
			return "", c.retryLater(ctx, fmt.Errorf("the store of %s is already full", edgeNode))
		}
		written, err := s.FillEdgeStore(edgeNode)
		if err != nil {
			_ = s.FreeEdgeStore(edgeNode)
			lock.Unlock()
			return "", err
		}
		c.mu.Lock()
		c.fills[edgeNode]++
		c.mu.Unlock()
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			defer lock.Unlock()
			sleep(ctx, d)
			if err := s.FreeEdgeStore(edgeNode); err != nil {
				c.logf("chaos: freeing the store of %s: %v", edgeNode, err)
			}
		}()
		return fmt.Sprintf("of %s for %s (%d bytes written to fill it)", edgeNode, d.Round(100*time.Millisecond), written), nil
	case FreezeLC:
		// The LC's liveness probe (3 × 10 s) would restart a longer freeze.
		d := c.partitionLength(20*time.Second, left)
		pid, err := s.LCPID(edgeNode)
		if err != nil {
			return "", c.retryLater(ctx, err)
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return "", err
		}
		c.partitioned.Lock()
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			defer c.partitioned.Unlock()
			defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }() // gone if it was killed meanwhile
			sleep(ctx, d)
		}()
		return fmt.Sprintf("of %s for %s (pid %d)", edgeNode, d.Round(100*time.Millisecond), pid), nil
	}
	return "", fmt.Errorf("unknown fault %q", kind)
}

// errSkip is returned by injectOne for a fault whose target is not there right now (an LC
// between its kill and its restart); the loop does not count it.
var errSkip = errors.New("target not running")

func (c *campaign) retryLater(ctx context.Context, err error) error {
	sleep(ctx, time.Second)
	return fmt.Errorf("%w: %w", errSkip, err)
}

// partitionLength is 1 s to max (log-uniform: most cuts are short, some long), and ends
// before the injection phase does.
func (c *campaign) partitionLength(max, left time.Duration) time.Duration {
	lo, hi := 1.0, max.Seconds()
	d := time.Duration(lo * math.Pow(hi/lo, c.rng.Float64()) * float64(time.Second))
	if left > time.Second && d > left {
		d = left
	}
	if d < time.Second {
		d = time.Second
	}
	return d
}

// killGM kills the leading GM. With a standby, the killed one comes back 2 s to 30 s later
// (in the background) and waits as the standby; without, it is restarted at once.
func (c *campaign) killGM(ctx context.Context) (string, error) {
	s := c.s
	if !c.cfg.Standby {
		c.setDown(localsedna.PrimaryGM, true)
		defer c.setDown(localsedna.PrimaryGM, false)
		if err := s.KillGM(); err != nil {
			return "", err
		}
		if err := s.StartGM(ctx); err != nil {
			return "", err
		}
		return "(restarted)", nil
	}
	slot := localsedna.PrimaryGM
	if !s.GMReady(ctx, slot) {
		slot = localsedna.StandbyGM
	}
	if !s.GMRunning(slot) {
		return "", c.retryLater(ctx, fmt.Errorf("the %s GM is not running", slot))
	}
	c.setDown(slot, true)
	if err := s.KillGMSlot(slot); err != nil {
		c.setDown(slot, false)
		return "", err
	}
	back := time.Duration(2+c.rng.IntN(28)) * time.Second
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.setDown(slot, false)
		sleep(ctx, back)
		if err := s.RestartGMSlot(context.Background(), slot); err != nil {
			c.logf("chaos: restarting the %s GM: %v", slot, err)
		}
	}()
	return fmt.Sprintf("(%s; back in %s)", slot, back), nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// waitReady waits until the service is Ready and the edge worker answers.
func (c *campaign) waitReady(ctx context.Context, timeout time.Duration) error {
	edge, _ := c.s.Node(localsedna.EdgeNodeName(1))
	url := "http://" + edge.IP + ":8000/healthz"
	last := ""
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ji, err := c.s.Client.SednaV1alpha1().JointInferenceServices(c.cfg.Namespace).Get(ctx, jiName, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case !apimeta.IsStatusConditionTrue(ji.Status.Conditions, sednav1.ConditionReady):
			last = fmt.Sprintf("conditions %v", ji.Status.Conditions)
		default:
			resp, err := http.Get(url) //nolint:noctx // bounded by the loop's deadline
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to be Ready and its edge worker to answer: %w (last: %s)", jiName, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// lcRestarts is the LC container's restart count per edge node.
func (c *campaign) lcRestarts(ctx context.Context) (map[string]int32, error) {
	out := map[string]int32{}
	for _, n := range c.s.Nodes {
		if !n.Edge {
			continue
		}
		pod, err := c.s.LCPod(ctx, n.Name)
		if err != nil {
			return nil, err
		}
		for _, st := range pod.Status.ContainerStatuses {
			out[n.Name] += st.RestartCount
		}
	}
	return out, nil
}

// connectedLCs is what the ready GM counts.
func (c *campaign) connectedLCs(ctx context.Context) int {
	for _, slot := range []localsedna.GMSlot{localsedna.PrimaryGM, localsedna.StandbyGM} {
		if c.s.GMReady(ctx, slot) {
			v, err := c.s.GMSlotMetric(ctx, slot, "sedna_gm_channel_connected_nodes")
			if err == nil {
				return int(v)
			}
		}
	}
	return -1
}

// check waits for convergence and fills res.Rows.
func (c *campaign) check(ctx context.Context, res *Result, watch *watcher, answered int64, restartsBefore map[string]int32, healedAt time.Time, reportersErr error) {
	edges := len(c.s.Nodes) - 1
	jis := c.s.Client.SednaV1alpha1().JointInferenceServices(c.cfg.Namespace)
	var counted float64
	var ready bool
	connected := -1
	deadline := healedAt.Add(c.cfg.Converge)
	converged := false
	outcomes, outcomesErr := c.reportOutcomes()
	// The federated learning jobs are waited for meanwhile (their bound runs from healedAt).
	var flRows []Row
	flDone := make(chan struct{})
	if c.fl != nil {
		go func() {
			defer close(flDone)
			res.FL = c.fl.check(ctx, healedAt, func(inv, want, got string, ok bool) { flRows = append(flRows, Row{inv, want, got, ok}) })
		}()
	} else {
		close(flDone)
	}
	var llRows []Row
	llDone := make(chan struct{})
	if c.ll != nil {
		go func() {
			defer close(llDone)
			add := func(inv, want, got string, ok bool) { llRows = append(llRows, Row{inv, want, got, ok}) }
			c.ll.rowUnderFaults(add)
			res.LL = c.ll.check(ctx, healedAt, add)
		}()
	} else {
		close(llDone)
	}
	var reports reportTally
	var arrivalsErr error
	for {
		ji, err := jis.Get(ctx, jiName, metav1.GetOptions{})
		if err == nil {
			counted, _ = localsedna.MetricValue(ji, "inferenceNumber")
			ready = apimeta.IsStatusConditionTrue(ji.Status.Conditions, sednav1.ConditionReady)
		}
		connected = c.connectedLCs(ctx)
		var arrivals gmRecords
		arrivals, arrivalsErr = c.gmArrivals()
		reports = tally(outcomes, arrivals)
		if err == nil && int64(counted) == answered && ready && connected == edges && arrivalsErr == nil && reports.missing == 0 {
			converged = true
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	res.Converged = time.Since(healedAt)
	lost, dup := answered-int64(counted), int64(counted)-answered
	lost, dup = max(lost, 0), max(dup, 0)
	add := func(inv, want, got string, ok bool) { res.Rows = append(res.Rows, Row{inv, want, got, ok}) }
	add("inferences the edge answered (HTTP 200) counted in status.metrics inferenceNumber",
		strconv.FormatInt(answered, 10), strconv.FormatFloat(counted, 'f', -1, 64), int64(counted) == answered)
	add("answered inferences lost", "0", strconv.FormatInt(lost, 10), lost == 0)
	add("inferences counted twice", "0", strconv.FormatInt(dup, 10), dup == 0)
	c.reportRows(add, reports, errors.Join(reportersErr, outcomesErr, arrivalsErr))
	ws := watch.stats()
	deployments := 2 * (1 + edges) // the example and a reporter service per edge node, 2 workers each
	if c.il != nil {
		deployments++ // the inference worker
	}
	if c.ll != nil {
		deployments++ // the inference worker
	}
	add(fmt.Sprintf("workers (service or job, worker type) that had a Deployment (%d watch events)", ws.events),
		strconv.Itoa(deployments), strconv.Itoa(ws.workers), ws.workers == deployments)
	add("most live Deployments of one worker at any time", "1", fmt.Sprintf("%d (%s)", ws.maxDeploy, ws.worstDeploy), ws.maxDeploy == 1)
	add(fmt.Sprintf("most running, not deleting, pods of one worker (1 replica) and template revision at any time, over the pods of %d workers", len(ws.podWorkers)),
		"≤ 1", fmt.Sprintf("%d (%s)", ws.maxPods, ws.worstPods), ws.maxPods <= 1)
	res.Watched = "pods watched, per worker: " + strings.Join(ws.podWorkers, ", ")
	add("service Ready after the last fault healed", "True", strconv.FormatBool(ready), ready)
	if c.cfg.Network != nil {
		c.mu.Lock()
		down, cut := c.linksDown, c.linksCut
		c.mu.Unlock()
		add("link-down partitions that cut the node off (its LC unreachable from the host, GM's address from the node)",
			strconv.Itoa(down), strconv.Itoa(cut), cut == down)
		c.notReadyRow(add)
	}
	res.Snapshots = c.snapshotRows(add)
	add("LCs connected to the leading GM", strconv.Itoa(edges), strconv.Itoa(connected), connected == edges)
	add(fmt.Sprintf("status converged after the last fault healed (bound %s)", c.cfg.Converge),
		"yes", fmt.Sprintf("%v in %s", converged, res.Converged.Round(100*time.Millisecond)), converged)
	// An LC that restarted without being killed crashed: a store that did not open, a panic.
	after, err := c.lcRestarts(ctx)
	extra := 0
	detail := []string{}
	if err != nil {
		add("LC restarts without a kill (crashes)", "0", err.Error(), false)
	} else {
		for node, n := range after {
			d := int(n-restartsBefore[node]) - c.lcKills[node]
			detail = append(detail, fmt.Sprintf("%s: %d restarts, %d kills", node, n-restartsBefore[node], c.lcKills[node]))
			if d > 0 {
				extra += d
			}
		}
		sort.Strings(detail)
		add("LC restarts without a kill (crashes, store not opening)", "0", fmt.Sprintf("%d (%s)", extra, strings.Join(detail, "; ")), extra == 0)
	}
	if c.il != nil {
		progress, ok := c.il.checkProgress(ctx, ilBound)
		add(fmt.Sprintf("incremental learning: fed after the last fault healed, a new round ends (deployed or saying why) or a Failed condition says why (bound %s)", ilBound),
			"yes", progress, ok)
		res.IL = c.il.summary(ctx)
	}
	<-flDone
	res.Rows = append(res.Rows, flRows...)
	<-llDone
	res.Rows = append(res.Rows, llRows...)
	opened, total, why := c.openTruncatedStores()
	add("copies of each LC store truncated mid-record that open (whole or quarantined)", strconv.Itoa(total), fmt.Sprintf("%d%s", opened, why), total > 0 && opened == total)
}

// verifyCut checks that edge node i is cut off once its link is down: the host cannot reach
// the node's LC, and the node cannot reach GM's address (the relay standing for its Service).
func (c *campaign) verifyCut(ctx context.Context, i int) error {
	link := c.cfg.Network.Links[i-1]
	probe := func(dial func(ctx context.Context, network, address string) (net.Conn, error), address string) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		conn, err := dial(ctx, "tcp", address)
		if err == nil {
			_ = conn.Close() // a probe
			return fmt.Errorf("%s answered", address)
		}
		return cutOff(address, err)
	}
	var d net.Dialer
	if err := probe(d.DialContext, net.JoinHostPort(link.NodeIP, strconv.Itoa(localsedna.LCPort))); err != nil {
		return fmt.Errorf("from the host: %w", err)
	}
	if c.cfg.Relay != nil {
		if err := probe(netns.Dialer(link.Path()), c.cfg.Relay.Addr()); err != nil {
			return fmt.Errorf("from the node: %w", err)
		}
	}
	return nil
}

// cutOff tells whether a failed dial shows the address out of reach: only a timeout or an
// unreachable network or host does. A refused connection means the other side's stack answered
// (e.g. an LC a concurrent fault stopped), so the link is not what failed.
func cutOff(address string, err error) error {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return nil
	default:
		return fmt.Errorf("%s did not time out or prove unreachable: %w", address, err)
	}
}

// fullStoreRefusals counts the reports the LCs logged as refused because their store was full.
func (c *campaign) fullStoreRefusals(ctx context.Context) int {
	total := 0
	for _, n := range c.s.Nodes {
		if !n.Edge {
			continue
		}
		path, err := c.s.LCLog(ctx, n.Name)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "Queueing a worker report failed") && strings.Contains(line, "no space left on device") {
				total++
			}
		}
	}
	return total
}

// openTruncatedStores copies each edge node's LC store, cuts the copy at a random offset and
// opens it with the LC's store code, as an LC restarted from a disk that lost the end of a
// write would.
func (c *campaign) openTruncatedStores() (opened, total int, why string) {
	var errs []string
	for _, n := range c.s.Nodes {
		if !n.Edge {
			continue
		}
		files, _ := filepath.Glob(n.HostPath("/var/lib/sedna/*.db"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil || len(data) < 2 {
				errs = append(errs, fmt.Sprintf("%s: %v", f, err))
				total++
				continue
			}
			for range 3 {
				total++
				cut := 1 + c.rng.IntN(len(data)-1)
				ok, msg := openTruncatedCopy(data[:cut])
				if ok {
					opened++
				} else {
					errs = append(errs, fmt.Sprintf("%s cut at %d: %s", f, cut, msg))
				}
			}
		}
	}
	if len(errs) > 0 {
		why = " (" + strings.Join(errs, "; ") + ")"
	}
	return opened, total, why
}

// workerPID finds the process called name that a pod of the node with root runs: its working
// directory is the pod's directory under root, so another local Sedna's workers on the same
// machine are never the target.
func workerPID(root, name string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		argv0, _, _ := strings.Cut(string(raw), "\x00")
		if filepath.Base(argv0) != name {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && strings.HasPrefix(cwd, root+string(filepath.Separator)) {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%d %s processes under %s", len(found), name, root)
	}
	return found[0], nil
}

func (c *campaign) setDown(slot localsedna.GMSlot, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gmDown[slot] = down
}

// superviseGMs restarts a GM that exited without being killed by the campaign, once a second,
// as the restart policy of GM's Deployment would: GM exits by design when it loses its Lease.
func (c *campaign) superviseGMs() {
	defer close(c.supvDone)
	slots := []localsedna.GMSlot{localsedna.PrimaryGM}
	if c.cfg.Standby {
		slots = append(slots, localsedna.StandbyGM)
	}
	for {
		select {
		case <-c.stopSupv:
			return
		case <-time.After(time.Second):
		}
		for _, slot := range slots {
			c.mu.Lock()
			down := c.gmDown[slot]
			c.mu.Unlock()
			if down || c.s.GMRunning(slot) {
				continue
			}
			if err := c.s.RestartGMSlot(context.Background(), slot); err != nil {
				c.logf("chaos: restarting the %s GM after it exited: %v", slot, err)
				continue
			}
			c.mu.Lock()
			c.gmExits++
			c.mu.Unlock()
			c.logf("chaos: the %s GM exited on its own (see %s); restarted it", slot, c.s.GMSlotLog(slot))
		}
	}
}
