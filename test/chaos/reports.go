package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/test/localsedna"
)

// The reporter's files in its pod's directory (test/chaos/chaos-reporter).
const (
	reporterImage   = "sedna-test/chaos-reporter:v0.1"
	reporterLog     = "chaos-reports.log"
	reporterStop    = "chaos-reports.stop"
	reporterService = "chaos-reports-"
	// The reporter writes in an emptyDir: <node root>/pods/<uid>/volumes/<name> on a process node.
	reporterVolume = "reports"
	reporterMount  = "/var/chaos-reports"
)

// reporterName is the joint inference service whose edge worker is edge node i's reporter.
func reporterName(i int) string { return fmt.Sprintf("%s%d", reporterService, i) }

// deployReporters creates, per edge node, a joint inference service whose edge worker is the
// campaign's reporter on that node (its cloud worker idles): each sends its LC reports carrying
// unique IDs and records what the LC answered.
func (c *campaign) deployReporters(ctx context.Context) error {
	model, err := os.ReadFile(filepath.Join(localsedna.MNISTModelDir(), "edge.model"))
	if err != nil {
		return fmt.Errorf("reading the edge model the reporters' services name: %w", err)
	}
	jis := c.s.Client.SednaV1alpha1().JointInferenceServices(c.cfg.Namespace)
	for i := 1; i < len(c.s.Nodes); i++ {
		node, _ := c.s.Node(localsedna.EdgeNodeName(i))
		// The service names the example's models; GM mounts the edge model on the edge node.
		dst := node.HostPath("/data/mnist/models/edge.model")
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, model, 0o644); err != nil {
			return err
		}
		edge := corev1.PodSpec{NodeName: node.Name,
			Containers: []corev1.Container{{Name: "reporter", Image: reporterImage, Args: []string{"--dir=" + reporterMount},
				VolumeMounts: []corev1.VolumeMount{{Name: reporterVolume, MountPath: reporterMount}}}},
			Volumes: []corev1.Volume{{Name: reporterVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		}
		cloud := corev1.PodSpec{NodeName: localsedna.CloudNode,
			Containers: []corev1.Container{{Name: "idle", Image: reporterImage, Args: []string{"--idle"}}}}
		ji := &sednav1.JointInferenceService{
			ObjectMeta: metav1.ObjectMeta{Name: reporterName(i)},
			Spec: sednav1.JointInferenceServiceSpec{
				EdgeWorker: sednav1.EdgeWorker{
					Model:             sednav1.ModelReference{Name: "mnist-edge-model"},
					HardExampleMining: sednav1.HardExampleMining{Name: "CrossEntropy"},
					Template:          corev1.PodTemplateSpec{Spec: edge},
				},
				CloudWorker: sednav1.CloudWorker{
					Model:    sednav1.ModelReference{Name: "mnist-cloud-model"},
					Template: corev1.PodTemplateSpec{Spec: cloud},
				},
			},
		}
		if _, err := jis.Create(ctx, ji, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the reporter service of %s: %w", node.Name, err)
		}
	}
	return nil
}

// reporterLogs lists the reporters' logs: the pod directories of every edge node.
func (c *campaign) reporterLogs() []string {
	var logs []string
	for _, n := range c.s.Nodes {
		if n.Edge {
			found, _ := filepath.Glob(filepath.Join(n.Root, "pods", "*", "volumes", reporterVolume, reporterLog))
			logs = append(logs, found...)
		}
	}
	sort.Strings(logs)
	return logs
}

// stopReporters asks every reporter to stop and waits until each wrote "stopped", so the
// outcomes read afterwards are final.
func (c *campaign) stopReporters(ctx context.Context) error {
	logs := c.reporterLogs()
	if len(logs) == 0 {
		return fmt.Errorf("no reporter wrote %s on any edge node", reporterLog)
	}
	for _, log := range logs {
		if err := os.WriteFile(filepath.Join(filepath.Dir(log), reporterStop), nil, 0o644); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, log := range logs {
		for {
			data, err := os.ReadFile(log)
			if err == nil && strings.HasSuffix(string(data), "stopped\n") {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("the reporter writing %s did not stop", log)
			}
			sleep(ctx, 200*time.Millisecond)
		}
	}
	return nil
}

// reportOutcomes reads what the LCs answered to every report: ID → outcome (ok, enospc,
// refused-<code>, error).
func (c *campaign) reportOutcomes() (map[string]string, error) {
	out := map[string]string{}
	for _, log := range c.reporterLogs() {
		f, err := os.Open(log)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			id, outcome, ok := strings.Cut(sc.Text(), " ")
			if ok {
				out[id] = outcome
			}
		}
		_ = f.Close() // read only
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", log, err)
		}
	}
	return out, nil
}

// The GM log lines the campaign reads (klog text: "I1205 18:21:36.289955   17972 file.go:1] ...",
// the number after the time being the process's pid): workerreports' "Recorded a worker report"
// (V(4)) with the report's ID in its values, the reporting node and the channel's reportSeq, and
// messagelayer's "Persisted a report mark" (V(4)) per node and write.
var (
	klogPidRE  = regexp.MustCompile(`^[IWEF](\d{4} [0-9:.]+)\s+(\d+) `)
	recordedRE = regexp.MustCompile(`reportId[^A-Za-z0-9]+([A-Za-z0-9._-]+)`)
	nodeRE     = regexp.MustCompile(` node="([^"]+)"`)
	seqRE      = regexp.MustCompile(` (?:reportSeq|seq)=(\d+)`)
)

// arrival is one recording of a report by a GM process.
type arrival struct {
	// at is klog's "MMDD hh:mm:ss.uuuuuu": the GMs' two logs are read one after the other, and
	// the recordings are put in time order by it.
	at, pid, node string
	seq           uint64
}

// gmRecords is what the GM processes of the campaign logged: per report ID its recordings in
// log order, and per process and node the highest report mark it wrote.
type gmRecords struct {
	arrivals map[string][]arrival
	marked   map[string]map[string]uint64 // pid → node → seq
}

// redelivered says whether a report recorded by a and again later is a redelivery the protocol
// allows: a's process died before writing a mark covering it, so it never acknowledged it and
// the LC sent it to the next GM (at least once). Anything else recorded twice is a duplicate.
func (g gmRecords) redelivered(a, next arrival) bool {
	return a.pid != next.pid && a.node == next.node && a.seq > 0 && g.marked[a.pid][a.node] < a.seq
}

// gmArrivals reads every GM process's recordings of the reporters' reports and report marks:
// both slots, every restart (their logs are appended to).
func (c *campaign) gmArrivals() (gmRecords, error) {
	g := gmRecords{arrivals: map[string][]arrival{}, marked: map[string]map[string]uint64{}}
	for _, slot := range []localsedna.GMSlot{localsedna.PrimaryGM, localsedna.StandbyGM} {
		f, err := os.Open(c.s.GMSlotLog(slot))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return gmRecords{}, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			g.read(sc.Text())
		}
		_ = f.Close() // read only
		if err := sc.Err(); err != nil {
			return gmRecords{}, fmt.Errorf("reading %s: %w", c.s.GMSlotLog(slot), err)
		}
	}
	return g, nil
}

// read takes one GM log line.
func (g gmRecords) read(line string) {
	recorded := strings.Contains(line, "Recorded a worker report") && strings.Contains(line, reporterService)
	persisted := strings.Contains(line, "Persisted a report mark")
	if !recorded && !persisted {
		return
	}
	var a arrival
	if m := klogPidRE.FindStringSubmatch(line); m != nil {
		a.at, a.pid = m[1], m[2]
	}
	if m := nodeRE.FindStringSubmatch(line); m != nil {
		a.node = m[1]
	}
	if m := seqRE.FindStringSubmatch(line); m != nil {
		a.seq, _ = strconv.ParseUint(m[1], 10, 64)
	}
	if persisted {
		if g.marked[a.pid] == nil {
			g.marked[a.pid] = map[string]uint64{}
		}
		g.marked[a.pid][a.node] = max(g.marked[a.pid][a.node], a.seq)
		return
	}
	if m := recordedRE.FindStringSubmatch(line); m != nil {
		g.arrivals[m[1]] = append(g.arrivals[m[1]], a)
	}
}

// reportTally compares the LCs' answers with GM's records.
type reportTally struct {
	sent, accepted, enospc, refused, noAnswer int
	// missing: accepted (HTTP 200, outcome OK) and never recorded by GM; duplicated: recorded
	// more than once, other than redelivered; redelivered: recorded again by the next GM after
	// the GM that recorded it died before writing its mark (gmRecords.redelivered);
	// refusedArrived: refused by the LC and recorded by GM all the same.
	missing, duplicated, redelivered, refusedArrived int
	examples                                         []string
	// missingIDs are the accepted reports GM never recorded.
	missingIDs []string
}

func tally(outcomes map[string]string, g gmRecords) reportTally {
	var t reportTally
	for id, outcome := range outcomes {
		t.sent++
		recordings := slices.Clone(g.arrivals[id])
		slices.SortStableFunc(recordings, func(a, b arrival) int { return strings.Compare(a.at, b.at) })
		n := len(recordings)
		switch outcome {
		case "ok":
			t.accepted++
			if n == 0 {
				t.missing++
				t.missingIDs = append(t.missingIDs, id)
				t.example("missing " + id)
			}
		case "error":
			t.noAnswer++ // may or may not have been queued: arriving once is fine
		default:
			if outcome == "enospc" {
				t.enospc++
			} else {
				t.refused++
			}
			if n > 0 {
				t.refusedArrived++
				t.example(fmt.Sprintf("refused (%s) but recorded %s", outcome, id))
			}
		}
		if n > 1 {
			redelivered := true
			for i := 0; i+1 < n; i++ {
				redelivered = redelivered && g.redelivered(recordings[i], recordings[i+1])
			}
			if redelivered {
				t.redelivered++
			} else {
				t.duplicated++
				t.example(fmt.Sprintf("recorded %d times %s %v", n, id, recordings))
			}
		}
	}
	return t
}

func (t *reportTally) example(s string) {
	if len(t.examples) < 5 {
		t.examples = append(t.examples, s)
	}
}

// openingFill is the FillWhileCut fault (when Config.FullDisk), once edge node 1's reporter
// has had a report accepted.
func (c *campaign) openingFill(ctx context.Context) error {
	if !c.cfg.FullDisk || c.cfg.Network == nil {
		return nil
	}
	node := localsedna.EdgeNodeName(1)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		outcomes, _ := c.reportOutcomes()
		accepted := false
		for id, outcome := range outcomes {
			if outcome == "ok" && strings.HasPrefix(id, reporterName(1)+"-") {
				accepted = true
				break
			}
		}
		if accepted {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the reporter on %s had no report accepted within 2 min", node)
		}
		sleep(ctx, 500*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	at := time.Since(c.start)
	link, store := c.linkDown[node], c.storeFull[node]
	link.Lock()
	store.Lock()
	defer link.Unlock()
	defer store.Unlock()
	if err := c.cfg.Network.Down(ctx, 1); err != nil {
		return err
	}
	// Healing must happen even after an interrupt.
	defer func() {
		if err := c.cfg.Network.Up(context.Background(), 1); err != nil {
			c.logf("chaos: bringing the link of %s back up: %v", node, err)
		}
	}()
	written, err := c.s.FillEdgeStore(node)
	defer func() {
		if err := c.s.FreeEdgeStore(node); err != nil {
			c.logf("chaos: freeing the store of %s: %v", node, err)
		}
	}()
	if err != nil {
		return err
	}
	sleep(ctx, 10*time.Second)
	c.mu.Lock()
	c.faults[FillWhileCut]++
	c.n++
	c.mu.Unlock()
	c.logf("chaos: fault 0 at %s: %s on %s (%d bytes written to fill it)", at.Round(100*time.Millisecond), FillWhileCut, node, written)
	return nil
}

// reportRows adds the rows of the reporters' reports; err is a failure to read their outcomes
// or GM's logs, or a reporter that did not stop.
func (c *campaign) reportRows(add func(inv, want, got string, ok bool), t reportTally, err error) {
	c.res.Reports = fmt.Sprintf("test workers' reports with IDs: %d sent, %d accepted (HTTP 200, outcome OK), %d refused for ENOSPC, %d refused otherwise, %d without an answer",
		t.sent, t.accepted, t.enospc, t.refused, t.noAnswer)
	if len(t.examples) > 0 {
		c.res.Reports += " (" + strings.Join(t.examples, "; ") + ")"
	}
	got := fmt.Sprint(t.accepted - t.missing)
	if err != nil {
		got += fmt.Sprintf(" (%v)", err)
	}
	add("test workers' reports an LC accepted (HTTP 200, OK) that GM recorded", fmt.Sprint(t.accepted), got,
		err == nil && t.accepted > 0 && t.missing == 0)
	lost := fmt.Sprint(t.missing)
	if t.missing > 0 {
		lost += " (" + c.lossClues(t.missingIDs) + ")"
	}
	add("accepted reports lost (never recorded by GM)", "0", lost, err == nil && t.missing == 0)
	add("reports GM recorded more than once (other than redelivered)", "0", fmt.Sprint(t.duplicated), err == nil && t.duplicated == 0)
	add("reports recorded again by the next GM because the GM that recorded them ended (killed, or its Lease lost) before writing their mark (at least once)",
		"any", fmt.Sprint(t.redelivered), true)
	add("reports an LC refused that GM recorded anyway", "0", fmt.Sprint(t.refusedArrived), err == nil && t.refusedArrived == 0)
	c.mu.Lock()
	fills, opening := c.faults[FillStore], c.faults[FillWhileCut]
	c.mu.Unlock()
	if opening > 0 {
		add(fmt.Sprintf("reports refused for ENOSPC (the first fault's full store while cut off, and %d other full-store faults)", fills),
			"≥ 1", fmt.Sprint(t.enospc), t.enospc >= 1)
	}
}

// lossClues says where lost reports may have gone, for a failed campaign's table (CI keeps
// only the table): the lost IDs by reporter process with the range of their sequence numbers
// (a contiguous run is a batch lost at once), and what the logs say about reports thrown away:
// GM's rejections (the LC drops a rejected report) and reports workerreports ignored.
func (c *campaign) lossClues(ids []string) string {
	type run struct{ n, lo, hi int }
	runs := map[string]*run{}
	for _, id := range ids {
		i := strings.LastIndexByte(id, '.')
		if i < 0 {
			continue
		}
		n, err := strconv.Atoi(id[i+1:])
		if err != nil {
			continue
		}
		r := runs[id[:i]]
		if r == nil {
			r = &run{lo: n, hi: n}
			runs[id[:i]] = r
		}
		r.n++
		r.lo, r.hi = min(r.lo, n), max(r.hi, n)
	}
	var parts []string
	for prefix, r := range runs {
		parts = append(parts, fmt.Sprintf("%s: %d lost, numbers %d–%d", prefix, r.n, r.lo, r.hi))
	}
	sort.Strings(parts)
	count := func(path string, needles ...string) int {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		n := 0
		for _, line := range strings.Split(string(data), "\n") {
			for _, needle := range needles {
				if strings.Contains(line, needle) {
					n++
					break
				}
			}
		}
		return n
	}
	gmRejected, gmIgnored := 0, 0
	for _, slot := range []localsedna.GMSlot{localsedna.PrimaryGM, localsedna.StandbyGM} {
		gmRejected += count(c.s.GMSlotLog(slot), "Rejected a report")
		gmIgnored += count(c.s.GMSlotLog(slot), "Ignoring the report", "Ignoring a report")
	}
	lcDropped := 0
	for _, n := range c.s.Nodes {
		if n.Edge {
			logs, _ := filepath.Glob(filepath.Join(n.LogDir(), "*_lc.log"))
			for _, log := range logs {
				lcDropped += count(log, "GM rejected a report", "quarantin")
			}
		}
	}
	parts = append(parts, fmt.Sprintf("GM log lines: %d rejected reports, %d ignored reports; LC log lines: %d reports dropped as rejected or stores quarantined",
		gmRejected, gmIgnored, lcDropped))
	return strings.Join(parts, "; ")
}
