package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
)

// ilName is the incremental learning example's job name.
const ilName = "mnist-il"

// imageUser is the user the example's images run as (hack/images); the job's host paths are
// theirs, as on a node prepared for the example.
const imageUser = 65532

// ilRun is the incremental learning example running on the last edge node during the campaign:
// a feeder streams images to its inference worker and labels the hard examples it filed, so the
// train trigger fires again and again and rounds go train → eval → deploy while faults land.
type ilRun struct {
	c       *campaign
	node    localsedna.Node
	nodeIdx int
	dataDir string
	url     string

	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu sync.Mutex
	// batches fed (streamed and labelled); feedErrors: attempts that failed (a partition, a
	// killed LC); next is the first training image of the next batch.
	batches, feedErrors, next int
	lastFeedErr               string
}

// startIL prepares the last edge node's host paths and initial model, applies the example with
// its workers on that node, and waits until the inference worker answers.
func (c *campaign) startIL(ctx context.Context) (*ilRun, error) {
	edges := len(c.s.Nodes) - 1
	node, _ := c.s.Node(localsedna.EdgeNodeName(edges))
	r := &ilRun{c: c, node: node, nodeIdx: edges, dataDir: node.HostPath("/data/mnist-il"),
		url: "http://" + node.IP + ":8000", stopCh: make(chan struct{}), done: make(chan struct{}), next: 10000}
	// The example's hostPath volumes, owned by the images' user (the inference worker files hard
	// examples in hard-examples); mnist-il-initial fills them.
	if err := prepareHostDirs(node, "/data/mnist-il", "/data/mnist-il/hard-examples"); err != nil {
		return nil, err
	}
	if out, err := r.run(ctx, "mnist-il-initial", "--data-dir", r.dataDir); err != nil {
		return nil, fmt.Errorf("preparing the incremental learning data: %w\n%s", err, out)
	}
	// The example's workers go to this node (edge node 1 serves the joint inference example on
	// the same port).
	if err := c.applyExampleOn(ctx, node, "incremental_learning", "mnist-incremental-learning.yaml"); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := http.Get(r.url + "/healthz") //nolint:noctx // bounded by the loop's deadline
		if err == nil {
			_ = resp.Body.Close() // status only
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the incremental learning inference worker at %s did not answer: %v", r.url, err)
		}
		sleep(ctx, 500*time.Millisecond)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	go r.feed()
	return r, nil
}

// run runs one of the example's programs.
func (r *ilRun) run(ctx context.Context, program string, args ...string) ([]byte, error) {
	return runProgram(ctx, r.c.s, program, args...)
}

// runProgram runs one of the examples' programs from the repository (they find MNIST through
// the module cache), for at most 3 minutes.
func runProgram(ctx context.Context, s *localsedna.Sedna, program string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir(), program), args...)
	cmd.Dir = localcluster.RepoRoot()
	return cmd.CombinedOutput()
}

// prepareHostDirs creates the host paths dirs of node as a node prepared for the examples has
// them: owned by the images' user (as root), group-writable with the setgid bit.
func prepareHostDirs(node localsedna.Node, dirs ...string) error {
	for _, dir := range dirs {
		path := node.HostPath(dir)
		if err := os.MkdirAll(path, 0o755); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(path, imageUser, imageUser); err != nil {
				return err
			}
		}
		if err := os.Chmod(path, 0o775|os.ModeSetgid); err != nil {
			return err
		}
	}
	return nil
}

// feedOnce streams 1,000 training images to the inference worker and labels the hard
// examples it filed into the dataset: more than the train trigger's 200 samples.
func (r *ilRun) feedOnce(ctx context.Context) error {
	r.mu.Lock()
	start := r.next
	r.mu.Unlock()
	if out, err := r.run(ctx, "mnist-il-drive", "--url", r.url, "--stream", "1000", "--stream-start", fmt.Sprint(start),
		"--measure=false", "--timeout", "10s"); err != nil {
		return fmt.Errorf("streaming: %w: %s", err, lastLine(out))
	}
	if out, err := r.run(ctx, "mnist-il-label", "--dataset-index", filepath.Join(r.dataDir, "index.txt"),
		"--hard-examples-dir", filepath.Join(r.dataDir, "hard-examples")); err != nil {
		return fmt.Errorf("labelling: %w: %s", err, lastLine(out))
	}
	r.mu.Lock()
	r.batches++
	r.next += 1000
	if r.next+1000 > 60000 {
		r.next = 10000
	}
	r.mu.Unlock()
	return nil
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// feed feeds batches until a round starts (the train trigger counts the samples since the last
// round, and a better model files fewer hard examples), waits for that round to end (or 2 min),
// and again, until stop.
func (r *ilRun) feed() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stopCh
		cancel()
	}()
	for ctx.Err() == nil {
		before, _ := r.job(ctx)
		if err := r.feedOnce(ctx); err != nil {
			r.mu.Lock()
			r.feedErrors++
			r.lastFeedErr = err.Error()
			r.mu.Unlock()
			if ctx.Err() == nil {
				r.c.logf("chaos: feeding the incremental learning job failed (a partition?): %v", err)
			}
			sleep(ctx, 2*time.Second)
			continue
		}
		if before == nil {
			continue
		}
		r.c.logf("chaos: fed the incremental learning job a batch at %s", stageOf(before))
		if !r.waitJob(ctx, 20*time.Second, func(j *sednav1.IncrementalLearningJob) bool { return j.Status.Round > before.Status.Round }) {
			continue // not enough new samples yet: feed more
		}
		r.waitJob(ctx, 2*time.Minute, func(j *sednav1.IncrementalLearningJob) bool {
			return roundEnded(j, before.Status.Round+1) != nil
		})
	}
}

// waitJob polls the job every second until done holds (true) or limit passes (false).
func (r *ilRun) waitJob(ctx context.Context, limit time.Duration, done func(*sednav1.IncrementalLearningJob) bool) bool {
	deadline := time.Now().Add(limit)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if j, err := r.job(ctx); err == nil && done(j) {
			return true
		}
		sleep(ctx, time.Second)
	}
	return false
}

// stopFeeding ends the feeder and waits for it; later calls do nothing.
func (r *ilRun) stopFeeding() {
	r.stopOnce.Do(func() { close(r.stopCh) })
	<-r.done
}

func (r *ilRun) job(ctx context.Context) (*sednav1.IncrementalLearningJob, error) {
	return r.c.s.Client.SednaV1alpha1().IncrementalLearningJobs(r.c.cfg.Namespace).Get(ctx, ilName, metav1.GetOptions{})
}

// roundEnded returns the first round numbered at least from that has ended (deployed, or a
// message saying why not), nil if none.
func roundEnded(j *sednav1.IncrementalLearningJob, from int32) *sednav1.LearningRound {
	for i := range j.Status.Rounds {
		round := &j.Status.Rounds[i]
		if round.Round >= from && round.CompletionTime != nil {
			return round
		}
	}
	return nil
}

// stageOf is where the job's current round is: "round/stage/state".
func stageOf(j *sednav1.IncrementalLearningJob) string {
	return fmt.Sprintf("%d/%s/%s", j.Status.Round, j.Status.Stage, j.Status.StageState)
}

// waitTransition waits up to limit for the job's stage or stage state to change and returns the
// transition seen ("from → to").
func (r *ilRun) waitTransition(ctx context.Context, limit time.Duration) (string, bool) {
	j, err := r.job(ctx)
	if err != nil {
		return "", false
	}
	from := stageOf(j)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		sleep(ctx, 50*time.Millisecond)
		j, err := r.job(ctx)
		if err != nil {
			continue
		}
		if to := stageOf(j); to != from {
			return from + " → " + to, true
		}
	}
	return "", false
}

// checkProgress is the incremental learning invariant after the last fault healed: fed until a
// new round starts, the job ends it (deployed, or a message saying why not), or a Failed
// condition says why it cannot: it never hangs silently.
func (r *ilRun) checkProgress(ctx context.Context, bound time.Duration) (string, bool) {
	j, err := r.job(ctx)
	if err != nil {
		return err.Error(), false
	}
	from := j.Status.Round + 1
	deadline := time.Now().Add(bound)
	fed := 0
	for {
		if j, err = r.job(ctx); err == nil && j.Status.Round < from {
			// No new round yet: feed (again), as a node's users keep producing data.
			if err := r.feedOnce(ctx); err == nil {
				fed++
				r.waitJob(ctx, 20*time.Second, func(j *sednav1.IncrementalLearningJob) bool { return j.Status.Round >= from })
			}
		}
		if j, err = r.job(ctx); err == nil {
			if round := roundEnded(j, from); round != nil {
				what := "deployed"
				if !round.Deployed {
					what = "not deployed: " + round.Message
				}
				return fmt.Sprintf("round %d ended, %s (%d batches fed)", round.Round, what, fed), true
			}
			if c := apimeta.FindStatusCondition(j.Status.Conditions, sednav1.ConditionFailed); c != nil && c.Status == metav1.ConditionTrue {
				return "Failed: " + c.Message, true
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			state := ""
			if j != nil {
				conds, _ := json.Marshal(j.Status.Conditions)
				state = fmt.Sprintf("at %s, conditions %s", stageOf(j), conds)
			}
			return fmt.Sprintf("no round ≥ %d ended within %s (%d batches fed) %s", from, bound, fed, state), false
		}
		sleep(ctx, time.Second)
	}
}

// summary is what the feeder did and the rounds the job ended.
func (r *ilRun) summary(ctx context.Context) string {
	r.mu.Lock()
	batches, errs, last := r.batches, r.feedErrors, r.lastFeedErr
	r.mu.Unlock()
	ended, deployed := 0, 0
	round := int32(0)
	if j, err := r.job(ctx); err == nil {
		round = j.Status.Round
		for _, rd := range j.Status.Rounds {
			if rd.CompletionTime != nil {
				ended++
				if rd.Deployed {
					deployed++
				}
			}
		}
	}
	s := fmt.Sprintf("incremental learning on %s: %d batches fed (%d attempts failed", r.node.Name, batches, errs)
	if last != "" {
		s += ", last: " + last
	}
	return s + fmt.Sprintf("); the job is at round %d, %d of its last rounds ended (%d deployed)", round, ended, deployed)
}

// applyExampleOn applies examples/<feature>/mnist/<file> in the campaign's namespace with its
// workers moved from edge-node-1 to node, keeping the placed copy beside the logs.
func (c *campaign) applyExampleOn(ctx context.Context, node localsedna.Node, feature, file string) error {
	data, err := os.ReadFile(filepath.Join(localcluster.RepoRoot(), "examples", feature, "mnist", file))
	if err != nil {
		return err
	}
	placed := filepath.Join(c.s.LogDir(), "chaos-"+file)
	if err := os.WriteFile(placed, []byte(strings.ReplaceAll(string(data), "edge-node-1", node.Name)), 0o644); err != nil {
		return err
	}
	if out, err := c.s.Kubectl(ctx, "apply", "--server-side", "-n", c.cfg.Namespace, "-f", placed); err != nil {
		return fmt.Errorf("applying %s: %w\n%s", placed, err, out)
	}
	return nil
}
