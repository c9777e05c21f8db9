package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sedna-go/sedna/test/localsedna"
)

// A partition during a snapshot (PartitionSnapshot): GM sends an LC everything bound to its
// node, then a sync frame, each time the LC's websocket connection starts. The campaign slows
// the node's link towards the node (a token bucket filter, 32 kbit/s: a slow edge link), makes
// the node connect again (the relay, standing for GM's Service, resets the node's connection,
// as a restarted load balancer would), and takes the link down as soon as a GM logs the new
// connection ("LC connected", logged when GM queues the snapshot). Unslowed, a snapshot of a
// node's few resources (some kB) crosses the veth and is applied within milliseconds, about
// what reading a log and `ip link set down` take, so the cut would land inside one only by
// luck; at 32 kbit/s (4 kB/s) its bytes alone take about a second per 4 kB. The logs then say whether the cut was inside: GM began the snapshot, had no
// acknowledgement of its sync frame ("Snapshot acknowledged") and the LC had not applied it
// ("Snapshot from GM applied") when the link was down.

// snapshotRate is the slow link's rate while the campaign waits for a snapshot to cut.
const snapshotRate = "32kbit"

// ResetFrom closes the relay's live connections whose edge end is host (their cloud ends
// follow), as a reset from the network would; it returns how many it closed.
func (r *Relay) ResetFrom(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for c := range r.conns {
		if h, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil && h == host {
			_ = c.Close() // the reset is the point
			n++
		}
	}
	return n
}

// snapshotEvidence is what the logs say of one snapshot a link-down was aimed at, read from
// the marks taken before the node's connection was reset to the moment the link was down.
type snapshotEvidence struct {
	// started: a GM logged "LC connected" for the node; acked: a GM logged "Snapshot
	// acknowledged" for the node after it; applied: the LC logged "Snapshot from GM applied".
	started, acked, applied bool
}

// interrupted is true when the link went down inside the snapshot: GM began it and neither
// side saw its end.
func (e snapshotEvidence) interrupted() bool { return e.started && !e.acked && !e.applied }

func (e snapshotEvidence) String() string {
	switch {
	case !e.started:
		return "no GM logged the node's connection"
	case e.acked:
		return "GM had the snapshot acknowledged"
	case e.applied:
		return "the LC had applied the snapshot"
	}
	return "GM began the snapshot, no acknowledgement, the LC had not applied it"
}

// classifySnapshot reads the evidence from the GM logs' and the LC log's text appended since
// the marks.
func classifySnapshot(node string, gmLogs [][]byte, lcLog []byte) snapshotEvidence {
	var e snapshotEvidence
	nodeAttr := fmt.Sprintf("node=%q", node)
	for _, log := range gmLogs {
		started := false
		for _, line := range strings.Split(string(log), "\n") {
			if !strings.Contains(line, nodeAttr) {
				continue
			}
			switch {
			case strings.Contains(line, `"LC connected"`):
				started = true
				e.started = true
			case strings.Contains(line, `"Snapshot acknowledged"`) && started:
				e.acked = true
			}
		}
	}
	e.applied = bytes.Contains(lcLog, []byte(`"Snapshot from GM applied"`))
	return e
}

// snapshotCut is one PartitionSnapshot fault.
type snapshotCut struct {
	node     string
	evidence snapshotEvidence
	// lcLog and lcMark: the LC's log and its size when the link was down.
	lcLog  string
	lcMark int64
}

// afterHeal tells how the LC got a snapshot once the link was back: "same" when it applied one
// without connecting again (the connection the cut interrupted resumed), "new" when on a new connection, ""
// when it applied none.
func afterHeal(lcLog []byte) string {
	applied := bytes.Index(lcLog, []byte(`"Snapshot from GM applied"`))
	if applied < 0 {
		return ""
	}
	if bytes.Contains(lcLog[:applied], []byte(`"Connected to GM"`)) {
		return "new"
	}
	return "same"
}

// logMark is a log file and its size at a moment.
type logMark struct {
	path string
	size int64
}

func markLog(path string) logMark {
	st, err := os.Stat(path)
	if err != nil {
		return logMark{path: path}
	}
	return logMark{path: path, size: st.Size()}
}

// since is what the log gained after the mark (all of it when it is shorter: a new file).
func (m logMark) since() []byte {
	f, err := os.Open(m.path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }() // read only
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	from := m.size
	if st.Size() < from {
		from = 0
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil
	}
	data, _ := io.ReadAll(f)
	return data
}

// partitionSnapshot is the PartitionSnapshot fault on edge node i, its link down for d once
// the cut landed (or missed).
func (c *campaign) partitionSnapshot(ctx context.Context, i int, d time.Duration) (Kind, string, error) {
	s := c.s
	node := localsedna.EdgeNodeName(i)
	host := c.cfg.Network.Links[i-1].NodeIP
	lock := c.linkDown[node]
	if !lock.TryLock() {
		return PartitionSnapshot, "", c.retryLater(ctx, fmt.Errorf("the link of %s is already down", node))
	}
	lcPath, err := s.LCLog(ctx, node)
	if err != nil {
		lock.Unlock()
		return PartitionSnapshot, "", c.retryLater(ctx, err)
	}
	gmMarks := []logMark{markLog(s.GMSlotLog(localsedna.PrimaryGM)), markLog(s.GMSlotLog(localsedna.StandbyGM))}
	lcMark := markLog(lcPath)
	gmSince := func() [][]byte {
		gm := make([][]byte, len(gmMarks))
		for k, m := range gmMarks {
			gm[k] = m.since()
		}
		return gm
	}
	if err := c.cfg.Network.Slow(ctx, i, snapshotRate); err != nil {
		lock.Unlock()
		return PartitionSnapshot, "", err
	}
	// The limit goes with the cut (or the miss); what it still queued is dropped.
	defer func() {
		if err := c.cfg.Network.Unslow(context.Background(), i); err != nil {
			c.logf("chaos: removing the rate limit of %s: %v", node, err)
		}
	}()
	reset := c.cfg.Relay.ResetFrom(host)
	began := time.Now()
	for !classifySnapshot(node, gmSince(), nil).started {
		if time.Since(began) > 15*time.Second {
			lock.Unlock()
			c.mu.Lock()
			c.snapshotSkips++
			c.mu.Unlock()
			return PartitionSnapshot, "", c.retryLater(ctx, fmt.Errorf("no GM began a snapshot for %s within 15 s of its reset (%d connections reset)", node, reset))
		}
		if ctx.Err() != nil {
			lock.Unlock()
			return PartitionSnapshot, "", ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
	}
	seen := time.Since(began)
	if err := c.cfg.Network.Down(ctx, i); err != nil {
		lock.Unlock()
		return PartitionSnapshot, "", err
	}
	ev := classifySnapshot(node, gmSince(), lcMark.since())
	cutMark := markLog(lcPath)
	c.linkCutOff(ctx, i, node, d, lock)
	kind := PartitionSnapshot
	if !ev.interrupted() {
		kind = PartitionSnapshotMissed
	}
	c.mu.Lock()
	c.snapshotCuts = append(c.snapshotCuts, snapshotCut{node: node, evidence: ev, lcLog: lcPath, lcMark: cutMark.size})
	c.mu.Unlock()
	return kind, fmt.Sprintf("of %s for %s (its connection reset, GM's log of the new one seen after %s, link down: %s)",
		node, d.Round(100*time.Millisecond), seen.Round(time.Millisecond), ev), nil
}

// openingSnapshotCut is a PartitionSnapshot before the random faults (with network namespaces
// and the relay), so every campaign, however short, tries one.
func (c *campaign) openingSnapshotCut(ctx context.Context) error {
	if c.cfg.Network == nil || c.cfg.Relay == nil {
		return nil
	}
	for range 3 {
		at := time.Since(c.start)
		i := 1 + c.rng.IntN(len(c.s.Nodes)-1)
		kind, detail, err := c.partitionSnapshot(ctx, i, c.partitionLength(c.cfg.MaxPartition, c.cfg.Duration))
		if errors.Is(err, errSkip) {
			c.logf("chaos: opening partition during a snapshot skipped: %v", err)
			continue
		}
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.faults[kind]++
		c.n++
		c.mu.Unlock()
		c.logf("chaos: fault 0 at %s: %s %s", at.Round(100*time.Millisecond), kind, detail)
		return nil
	}
	return nil
}

// linkCutOff checks that edge node i's link, down now, cuts the node off and brings it back up
// after d in the background, unlocking lock then.
func (c *campaign) linkCutOff(ctx context.Context, i int, node string, d time.Duration, lock *sync.Mutex) {
	from := time.Now()
	cut := c.verifyCut(ctx, i)
	c.mu.Lock()
	c.linksDown++
	if cut == nil {
		c.linksCut++
	} else {
		c.logf("chaos: the link of %s is down but the node is not cut off: %v", node, cut)
	}
	c.mu.Unlock()
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer lock.Unlock()
		end := time.Now().Add(d)
		if d >= notReadyPartition {
			sleep(ctx, time.Until(end.Add(-nodeReadBefore)))
			if ctx.Err() == nil {
				c.noteLongCut(ctx, node, from)
			}
		}
		sleep(ctx, time.Until(end))
		// Healing must happen even after an interrupt.
		if err := c.cfg.Network.Up(context.Background(), i); err != nil {
			c.logf("chaos: bringing the link of %s back up: %v", node, err)
		}
	}()
}

// snapshotRows adds the rows of the partitions during a snapshot: how many interrupted one
// (at least one when any was tried) and that the LC applied a snapshot after each heal.
func (c *campaign) snapshotRows(add func(inv, want, got string, ok bool)) string {
	c.mu.Lock()
	cuts := append([]snapshotCut(nil), c.snapshotCuts...)
	skips := c.snapshotSkips
	c.mu.Unlock()
	if len(cuts) == 0 && skips == 0 {
		return ""
	}
	interrupted, same, fresh := 0, 0, 0
	var missed, notApplied []string
	for _, cut := range cuts {
		if !cut.evidence.interrupted() {
			missed = append(missed, fmt.Sprintf("%s: %s", cut.node, cut.evidence))
			continue
		}
		interrupted++
		switch afterHeal(logMark{path: cut.lcLog, size: cut.lcMark}.since()) {
		case "same":
			same++
		case "new":
			fresh++
		default:
			notApplied = append(notApplied, cut.node)
		}
	}
	add("partitions during a snapshot that interrupted it (GM began it, no acknowledgement, the LC had not applied it when the link went down)",
		fmt.Sprintf("≥ 1 of %d (%d found no snapshot to cut)", len(cuts), skips), strconv.Itoa(interrupted), interrupted > 0)
	got := fmt.Sprintf("%d (%d resumed on the interrupted connection, %d on a new one)", same+fresh, same, fresh)
	if len(notApplied) > 0 {
		got += "; none on " + strings.Join(notApplied, ", ")
	}
	add("interrupted snapshots after which the LC applied one once the link was back", strconv.Itoa(interrupted), got, len(notApplied) == 0)
	summary := fmt.Sprintf("partitions during a snapshot: %d interrupted one, %d missed the window", interrupted, len(missed))
	if len(missed) > 0 {
		summary += " (" + strings.Join(missed, "; ") + ")"
	}
	return summary
}
