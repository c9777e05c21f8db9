package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sedna-go/sedna/examples/lifelong_learning/mnist/ll"
	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/test/localsedna"
)

// llName is the lifelong learning example's job name.
const llName = "mnist-ll"

// llNode is the edge node the lifelong learning example's workers run on: edge node 1 serves
// the joint inference example and the last one the incremental learning example, both on the
// port the lifelong learning inference worker listens on too.
const llNode = 2

// llBound bounds the wait, after the last fault healed, for the lifelong learning job to learn
// the tasks it was given (or say why it cannot) and for its status to match the knowledge base.
const llBound = 5 * time.Minute

// llStreams are the new tasks the driver brings after the first (upright digits, from the
// Dataset), in order: the example's rotations. Each is a stream of 1,500 images of the new
// rotation among 500 upright ones, from MNIST training image from on (a retry moves on 2,000).
var llStreams = []struct{ rotation, from int }{{90, 20000}, {45, 40000}}

// llWindow is how many of MNIST's 60,000 training images each stream of llStreams may use from
// its from, and llStreamImages how many one stream takes.
const (
	llWindow       = 20000
	llStreamImages = 2000
)

// nextFrom is where the stream after one from from goes, within the window starting at start:
// the next llStreamImages, back to the window's start after its last (a run of failed streams,
// a node cut off for minutes, must not walk past the training set).
func nextFrom(from, start int) int {
	slots := llWindow / llStreamImages
	slot := ((from-start)/llStreamImages + 1) % slots
	return start + slot*llStreamImages
}

// llTries bounds the streams of one task: a stream whose round ended without learning the task
// (its train failed: the knowledge base was killed during the upload) is followed by another,
// as a node's users would bring more.
const llTries = 3

// llRun is the lifelong learning example on edge node llNode during the campaign: the first
// task is learned from the Dataset; then, each time the job has learned every task it was
// given, a stream of a new rotation goes to the inference worker, which flags it as unseen, the
// flagged images are labelled into the Dataset, and a round trains, evaluates and deploys the
// new task's model into the knowledge base (sedna-kb) — under the faults, which include
// KillKB. After the example's tasks the driver only reads the knowledge base: the example has
// three tasks, so lifelong learning runs for the first part of a long campaign.
type llRun struct {
	c       *campaign
	node    localsedna.Node
	dataDir string
	url     string

	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu sync.Mutex
	// given are the tasks labelled into the Dataset (the first by init), in order.
	given []string
	// labelled counts the labelled rows per rotation; streams and streamErrors the streams sent
	// and those that failed (a partition, the worker rolling).
	labelled              map[string]int
	streams, streamErrors int
	lastErr               string
	// kb is every task the knowledge base listed when read (before each kill, after each
	// round, at the check), with the SHA-256 of its model; changed records a task whose model
	// bytes differed between two reads.
	kb      map[string]string
	changed []string
	// kbKills counts KillKB faults; kbReads and kbReadErrors the reads of the knowledge base.
	kbKills, kbReads, kbReadErrors int
	// endedUnderFaults counts the rounds that ended while faults were being injected, and
	// deployedUnderFaults those of them deployed (faultsEnded).
	endedUnderFaults, deployedUnderFaults int
}

// startLL copies the knowledge base's token Secret into the campaign's namespace (as an
// administrator does), prepares edge node llNode's host paths and the first task's 1,500
// labelled images (mnist-ll-drive init), applies the example with its node names changed to
// llNode, and starts the driver.
func (c *campaign) startLL(ctx context.Context) (*llRun, error) {
	if len(c.s.Nodes)-1 < llNode {
		return nil, fmt.Errorf("the lifelong learning example runs on edge node %d, local Sedna has %d", llNode, len(c.s.Nodes)-1)
	}
	node, _ := c.s.Node(localsedna.EdgeNodeName(llNode))
	r := &llRun{c: c, node: node, dataDir: node.HostPath("/data/mnist-ll"), url: "http://" + node.IP + ":8000",
		stopCh: make(chan struct{}), done: make(chan struct{}), labelled: map[string]int{}, kb: map[string]string{}}
	if err := c.s.CopyKBTokenSecret(ctx, c.cfg.Namespace); err != nil {
		return nil, err
	}
	if err := prepareHostDirs(node, "/data/mnist-ll", "/data/mnist-ll/output"); err != nil {
		return nil, err
	}
	if out, err := runProgram(ctx, c.s, "mnist-ll-drive", "init", "--dataset-dir", r.dataDir, "--samples", "1500"); err != nil {
		return nil, fmt.Errorf("preparing the lifelong learning data: %w\n%s", err, out)
	}
	r.given, r.labelled["0"] = []string{ll.TaskID(0)}, 1500
	if err := c.applyExampleOn(ctx, node, "lifelong_learning", "mnist-lifelong-learning.yaml"); err != nil {
		return nil, err
	}
	go r.drive()
	return r, nil
}

func (r *llRun) job(ctx context.Context) (*sednav1.LifelongLearningJob, error) {
	return r.c.s.Client.SednaV1alpha1().LifelongLearningJobs(r.c.cfg.Namespace).Get(ctx, llName, metav1.GetOptions{})
}

// drive waits for the job to learn the tasks given so far, then streams the next new task, until
// every stream of llStreams was learned (or tried llTries times) or stop.
func (r *llRun) drive() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stopCh
		cancel()
	}()
	from := 0
	round, ok := r.waitLearned(ctx, 0)
	for _, next := range llStreams {
		from = next.from
		task := ll.TaskID(next.rotation)
		for try := 1; try <= llTries && ok; try++ {
			_, _ = r.readKB(ctx) // what it lists now it must list at the end
			if r.learnedAll(ctx) && slices.Contains(r.givenTasks(), task) {
				break
			}
			for ctx.Err() == nil {
				if err := r.stream(ctx, next.rotation, from); err != nil {
					r.note(func() { r.streamErrors++; r.lastErr = err.Error() })
					if ctx.Err() == nil {
						r.c.logf("chaos: streaming a new task to the lifelong learning worker failed (a partition?): %v", err)
					}
					from = nextFrom(from, next.from)
					sleep(ctx, 2*time.Second)
					continue
				}
				from = nextFrom(from, next.from)
				break
			}
			// The round the labelled rows trigger ends (or a later one), learning the task or
			// saying why not.
			round, ok = r.waitLearned(ctx, round)
		}
	}
	if ctx.Err() != nil {
		return // stopped: the check reads the knowledge base
	}
	_, _ = r.readKB(ctx)
	r.c.logf("chaos: the lifelong learning driver is done: %s", r.summary(ctx))
}

func (r *llRun) note(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

func (r *llRun) givenTasks() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.given)
}

// stream sends a stream of the new rotation among upright images to the inference worker and
// labels what it flagged (mnist-ll-drive stream); the task is given once its rows are labelled.
func (r *llRun) stream(ctx context.Context, rotation, from int) error {
	out, err := runProgram(ctx, r.c.s, "mnist-ll-drive", "stream", "--url", r.url, "--dataset-dir", r.dataDir,
		"--unseen-dir", filepath.Join(r.dataDir, "output", "unseen"), "--from", strconv.Itoa(from),
		"--new-rotation", strconv.Itoa(rotation), "--new", "1500", "--known-rotation", "0", "--known", "500", "--timeout", "2m")
	r.note(func() { r.streams++ })
	if err != nil {
		return fmt.Errorf("mnist-ll-drive stream: %w: %s", err, lastLine(out))
	}
	var result struct {
		Stream ll.StreamReport `json:"stream"`
		Labels ll.LabelReport  `json:"labels"`
	}
	if err := resultLine(out, &result); err != nil {
		return err
	}
	task := ll.TaskID(rotation)
	r.note(func() {
		for rot, n := range result.Labels.Labelled {
			r.labelled[rot] += n
		}
		if !slices.Contains(r.given, task) {
			r.given = append(r.given, task)
		}
	})
	r.c.logf("chaos: streamed %d images (%d of rotation %d) to the lifelong learning worker: AUROC %.4f, %d flagged, labelled %v",
		result.Stream.Streamed, result.Stream.NewTask, rotation, result.Stream.AUROC, result.Stream.Flagged, result.Labels.Labelled)
	return nil
}

// resultLine decodes a program's RESULT line into v.
func resultLine(out []byte, v any) error {
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			return json.Unmarshal([]byte(rest), v)
		}
	}
	return fmt.Errorf("no RESULT line: %s", lastLine(out))
}

// waitLearned waits until no round is under way and the job learned every task given
// (status.knowledgeBase lists them), or a round numbered above after ended without learning
// them (saying why); it returns the job's round then. False when stopped or the job Failed.
func (r *llRun) waitLearned(ctx context.Context, after int32) (int32, bool) {
	for ctx.Err() == nil {
		if j, err := r.job(ctx); err == nil {
			v := llVerdictOf(j, r.givenTasks(), nil)
			if v.failed {
				r.c.logf("chaos: the lifelong learning job failed; no more streams: %s", v.what)
				return j.Status.Round, false
			}
			if v.settled && (v.learned || j.Status.Round > after) {
				return j.Status.Round, true
			}
		}
		sleep(ctx, 2*time.Second)
	}
	return 0, false
}

func (r *llRun) learnedAll(ctx context.Context) bool {
	j, err := r.job(ctx)
	if err != nil {
		return false
	}
	return len(missingTasks(r.givenTasks(), statusTasks(j))) == 0
}

// faultsEnded counts the job's rounds that ended between from and to, the injection phase.
func (r *llRun) faultsEnded(ctx context.Context, from, to time.Time) {
	j, err := r.job(ctx)
	if err != nil {
		return
	}
	ended, deployed := roundsBetween(j.Status.Rounds, from, to)
	r.note(func() { r.endedUnderFaults, r.deployedUnderFaults = ended, deployed })
}

// roundsBetween counts the rounds that ended between from and to (to the second, as status
// keeps times), and those of them deployed.
func roundsBetween(rounds []sednav1.LearningRound, from, to time.Time) (ended, deployed int) {
	from, to = from.Truncate(time.Second), to.Add(time.Second)
	for _, rd := range rounds {
		if rd.CompletionTime != nil && !rd.CompletionTime.Time.Before(from) && rd.CompletionTime.Time.Before(to) {
			ended++
			if rd.Deployed {
				deployed++
			}
		}
	}
	return ended, deployed
}

// stop ends the driver and waits for it; later calls do nothing.
func (r *llRun) stop() {
	r.stopOnce.Do(func() { close(r.stopCh) })
	<-r.done
}

// statusTasks are the task IDs status.knowledgeBase lists, sorted.
func statusTasks(j *sednav1.LifelongLearningJob) []string {
	if j.Status.KnowledgeBase == nil {
		return nil
	}
	var ids []string
	for _, m := range j.Status.KnowledgeBase.AIModels.ListOfAIModels {
		ids = append(ids, m.ModelID)
	}
	slices.Sort(ids)
	return ids
}

// missingTasks are the tasks of want that have is without.
func missingTasks(want, have []string) []string {
	var out []string
	for _, t := range want {
		if !slices.Contains(have, t) {
			out = append(out, t)
		}
	}
	return out
}

// llVerdict is where the lifelong learning job stands against the tasks it was given.
type llVerdict struct {
	// settled: no round under way, and every task given learned (status.knowledgeBase, and the
	// knowledge base's index when kbTasks is not nil), or the last round ended saying why it
	// did not deploy, or a Failed condition says why the job cannot go on.
	settled bool
	// ok: settled, and not by a round or condition left unexplained.
	ok bool
	// learned: every task given is learned; failed: a Failed condition.
	learned, failed bool
	what            string
}

// llVerdictOf judges job j against the tasks given and, when not nil, the tasks the knowledge
// base lists.
func llVerdictOf(j *sednav1.LifelongLearningJob, given, kbTasks []string) llVerdict {
	if c := apimeta.FindStatusCondition(j.Status.Conditions, sednav1.ConditionFailed); c != nil && c.Status == metav1.ConditionTrue {
		return llVerdict{settled: true, ok: c.Message != "", failed: true, what: fmt.Sprintf("Failed at round %d: %s", j.Status.Round, c.Message)}
	}
	var last *sednav1.LearningRound
	for i := range j.Status.Rounds {
		if last == nil || j.Status.Rounds[i].Round > last.Round {
			last = &j.Status.Rounds[i]
		}
	}
	if j.Status.Round > 0 && (last == nil || last.Round < j.Status.Round || last.CompletionTime == nil) {
		return llVerdict{what: fmt.Sprintf("round %d under way at %s/%s", j.Status.Round, j.Status.Stage, j.Status.StageState)}
	}
	missing := missingTasks(given, statusTasks(j))
	if kbTasks != nil {
		for _, t := range missingTasks(given, kbTasks) {
			if !slices.Contains(missing, t) {
				missing = append(missing, t)
			}
		}
	}
	if len(missing) == 0 {
		return llVerdict{settled: true, ok: true, learned: true, what: fmt.Sprintf("learned %v in %d rounds", given, j.Status.Round)}
	}
	if last != nil && !last.Deployed && last.Message != "" {
		return llVerdict{settled: true, ok: true, what: fmt.Sprintf("%v not learned: round %d ended without deploying: %s", missing, last.Round, last.Message)}
	}
	return llVerdict{what: fmt.Sprintf("%v not learned, no round under way (round %d)", missing, j.Status.Round)}
}

// kbLost compares what the knowledge base listed at each read (task → model SHA-256) with its
// index now: the tasks it lost, and those whose model changed.
func kbLost(seen, now map[string]string) []string {
	var out []string
	for task, sum := range seen {
		switch got, ok := now[task]; {
		case !ok:
			out = append(out, task+" lost")
		case got != sum:
			out = append(out, task+" model changed")
		}
	}
	slices.Sort(out)
	return out
}

// kbSnapshot reads the knowledge base's index and the models it names through its Service
// (read token): task ID → the model's SHA-256.
func (r *llRun) kbSnapshot(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s := r.c.s
	base, err := s.KBURL(ctx)
	if err != nil {
		return nil, err
	}
	download := func(file string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/knowledgebase/file/download?files="+url.QueryEscape(file), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+s.KBTokens().Read)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer func() { _ = resp.Body.Close() }() // read to the end below
		content, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusNotFound && file == "index.json" {
			return nil, errNoIndex
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s: %s", file, resp.Status, strings.TrimSpace(string(content)))
		}
		return content, nil
	}
	raw, err := download("index.json")
	if errors.Is(err, errNoIndex) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	index, err := kb.ParseIndex(raw)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, task := range index.Tasks {
		parsed, err := url.Parse(task.Model.URL)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", task.ID, err)
		}
		file := parsed.Query().Get("files")
		if file == "" {
			return nil, fmt.Errorf("task %s: model URL %s names no file", task.ID, task.Model.URL)
		}
		model, err := download(file)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", task.ID, err)
		}
		sum := sha256.Sum256(model)
		out[task.ID] = hex.EncodeToString(sum[:])
	}
	return out, nil
}

// errNoIndex: the knowledge base answered that it has no index yet (nothing learned).
var errNoIndex = errors.New("no index yet")

// readKB reads the knowledge base and records what it lists; a read that fails (the knowledge
// base restarting, an apiserver restart) is counted and changes nothing.
func (r *llRun) readKB(ctx context.Context) (map[string]string, error) {
	now, err := r.kbSnapshot(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kbReads++
	if err != nil {
		r.kbReadErrors++
		return nil, err
	}
	for task, sum := range now {
		if old, ok := r.kb[task]; ok && old != sum {
			r.changed = append(r.changed, task)
		}
		r.kb[task] = sum
	}
	return now, nil
}

// killKB is the KillKB fault: the knowledge base is read first (what it holds now is what it
// must still hold after), then SIGKILLed; its pod restarts it on the same claim.
func (r *llRun) killKB(ctx context.Context) (string, error) {
	_, readErr := r.readKB(ctx)
	pid, err := r.c.s.KillKB()
	if err != nil {
		return "", err
	}
	r.note(func() { r.kbKills++ })
	r.mu.Lock()
	tasks := len(r.kb)
	r.mu.Unlock()
	if readErr != nil {
		return fmt.Sprintf("(pid %d; unread before the kill: %v)", pid, readErr), nil
	}
	return fmt.Sprintf("(pid %d, holding %d tasks)", pid, tasks), nil
}

// check is the lifelong learning invariant after the last fault healed: within llBound the job
// has learned every task it was given or says why (a round's message, a Failed condition), no
// round is left under way, status.knowledgeBase lists what the knowledge base's index holds,
// and the index still holds every task it ever listed, with the same model bytes.
func (r *llRun) check(ctx context.Context, healedAt time.Time, add func(inv, want, got string, ok bool)) string {
	deadline := healedAt.Add(llBound)
	var v llVerdict
	var kbNow map[string]string
	var kbErr, jobErr error
	var j *sednav1.LifelongLearningJob
	given := r.givenTasks()
	for {
		kbNow, kbErr = r.readKB(ctx)
		j, jobErr = r.job(ctx)
		if kbErr == nil && jobErr == nil {
			v = llVerdictOf(j, given, sortedKeys(kbNow))
			if v.settled && slices.Equal(statusTasks(j), sortedKeys(kbNow)) {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		sleep(ctx, 2*time.Second)
	}
	took := time.Since(healedAt).Round(100 * time.Millisecond)
	got := v.what
	if v.failed || (v.settled && !v.learned) {
		// What the failed pod said, from its log on the node.
		got += r.podLogTail(v.what)
	}
	switch {
	case jobErr != nil:
		got = jobErr.Error()
	case kbErr != nil:
		got = "the knowledge base did not answer: " + kbErr.Error()
	}
	add(fmt.Sprintf("lifelong learning: every task given is learned (in status.knowledgeBase and the knowledge base) or a round or a Failed condition says why, no round left under way (bound %s after the last fault healed)", llBound),
		"yes", fmt.Sprintf("%s (after %s)", got, took), jobErr == nil && kbErr == nil && v.settled && v.ok)
	var st, idx []string
	if j != nil {
		st = statusTasks(j)
	}
	if kbErr == nil {
		idx = sortedKeys(kbNow)
	}
	models := -1
	if j != nil && j.Status.KnowledgeBase != nil {
		models = j.Status.KnowledgeBase.AIModels.NumberOfAIModels
	}
	add("lifelong learning: status.knowledgeBase lists (and counts) the tasks the knowledge base's index holds",
		fmt.Sprintf("%v", idx), fmt.Sprintf("%v (numberOfAIModels %d)", st, models), kbErr == nil && j != nil && slices.Equal(st, idx) && models == len(idx))
	r.mu.Lock()
	kills, reads, readErrs := r.kbKills, r.kbReads, r.kbReadErrors
	seen := make(map[string]string, len(r.kb))
	for t, s := range r.kb {
		seen[t] = s
	}
	changed := slices.Clone(r.changed)
	r.mu.Unlock()
	var lost []string
	if kbErr == nil {
		lost = kbLost(seen, kbNow)
	}
	for _, t := range changed {
		lost = append(lost, t+" model changed between two reads")
	}
	lostGot := fmt.Sprintf("%d", len(lost))
	if len(lost) > 0 {
		lostGot += ": " + strings.Join(lost, ", ")
	}
	if kbErr != nil {
		lostGot = "unread: " + kbErr.Error()
	}
	add(fmt.Sprintf("knowledge base after %d kill -9: tasks it listed at any of %d reads (%d failed: restarting) lost, or their model bytes changed", kills, reads, readErrs),
		"0", lostGot, kbErr == nil && len(lost) == 0 && len(seen) > 0)
	return r.summary(ctx)
}

// failedPod finds the pod a round's or condition's message names ("…, last <pod>: …").
var failedPod = regexp.MustCompile(`last ([a-z0-9][a-z0-9.-]*):`)

// podLogTail is the end of the log of the pod message names, as " (<pod> logged: …)", or "".
func (r *llRun) podLogTail(message string) string {
	m := failedPod.FindStringSubmatch(message)
	if m == nil {
		return ""
	}
	files, _ := filepath.Glob(filepath.Join(r.node.LogDir(), fmt.Sprintf("%s_%s_*.log", r.c.cfg.Namespace, m[1])))
	if len(files) == 0 {
		return ""
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	tail := lines[max(0, len(lines)-2):]
	return fmt.Sprintf(" (%s logged: %s)", m[1], strings.Join(tail, " / "))
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// rowUnderFaults is the row saying that lifelong learning rounds ended while the faults were
// being injected (the example was not idle).
func (r *llRun) rowUnderFaults(add func(inv, want, got string, ok bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	add("lifelong learning rounds that ended while faults were injected (train → eval → deploy, or saying why not)",
		"≥ 1", fmt.Sprintf("%d (%d deployed)", r.endedUnderFaults, r.deployedUnderFaults), r.endedUnderFaults >= 1)
}

// summary is what the driver did and where the job stands.
func (r *llRun) summary(ctx context.Context) string {
	r.mu.Lock()
	given, streams, errs, last := slices.Clone(r.given), r.streams, r.streamErrors, r.lastErr
	labelled, _ := json.Marshal(r.labelled)
	kills := r.kbKills
	r.mu.Unlock()
	s := fmt.Sprintf("lifelong learning on %s: tasks given %v (rows labelled per rotation %s), %d streams (%d failed", r.node.Name, given, labelled, streams, errs)
	if last != "" {
		s += ", last: " + last
	}
	s += fmt.Sprintf("), knowledge base killed %d×", kills)
	if j, err := r.job(ctx); err == nil {
		ended, deployed := 0, 0
		var msgs []string
		for _, rd := range j.Status.Rounds {
			if rd.CompletionTime != nil {
				ended++
				if rd.Deployed {
					deployed++
				} else if rd.Message != "" {
					msgs = append(msgs, fmt.Sprintf("round %d: %s", rd.Round, rd.Message))
				}
			}
		}
		s += fmt.Sprintf("; the job is at round %d, %d rounds ended (%d deployed), status.knowledgeBase %v", j.Status.Round, ended, deployed, statusTasks(j))
		if len(msgs) > 0 {
			s += "; not deployed: " + strings.Join(msgs, "; ")
		}
	}
	return s
}
