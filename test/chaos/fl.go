package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
)

// flBound bounds the wait, after the last fault healed, for the federated learning job then
// running to end (Succeeded, or a Failed condition saying why).
const flBound = 5 * time.Minute

// flMinAccuracy is the least final accuracy a Succeeded job must reach on the 10,000 test
// images: each node alone stays near 40 % (it never sees six of the ten digits), an
// uninterrupted run reaches 95.5 % (examples/federated_learning/mnist/README.md).
const flMinAccuracy = 0.8

// flRun is the federated learning example running on the first three edge nodes (trainers) and
// the cloud node (aggregator) during the campaign: one job after another, each created as the
// previous one ended, so rounds keep going under the faults. Each job gets a name and a Model
// directory of its own (mnist-fl-<n>, /data/mnist-fl-model/<n>): the aggregator's checkpoint
// records its job's UID, and a job never resumes another's.
type flRun struct {
	c     *campaign
	cloud localsedna.Node
	// nodeIdx are the edge nodes (1-based) of the trainers.
	nodeIdx []int
	model   *sednav1.Model
	job     *sednav1.FederatedLearningJob
	// exitRound is the aggregator's exit_round in the example's job.
	exitRound int32

	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu   sync.Mutex
	jobs []*flJob
}

// flJob is one federated learning job of the campaign and what the driver saw of it.
type flJob struct {
	name    string
	started time.Time
	// round is the last status.round seen, roundAt when it last changed; stall is the longest
	// time the job was Running without its round changing.
	round            int32
	roundAt          time.Time
	stall            time.Duration
	aggregatorKills  int
	partitionsAtOpen int
	// ended is set once the job has a Complete or Failed condition; outcome says which and why.
	ended   time.Time
	outcome string
	// succeeded and accuracy (status.metrics) of a job that ended Complete; finalRound is its
	// status.round, both as last read (the status may show the last reports after Complete:
	// they can wait in an LC's outbox while the pods' phases reach the API server directly).
	// roundAtComplete is status.round when Complete was first seen.
	succeeded       bool
	accuracy        float64
	accErr          error
	finalRound      int32
	roundAtComplete int32
	// stranded is the TrainersStranded condition's message while it is True: the job cannot
	// end by itself and says why.
	stranded string
}

// startFL prepares the trainers' datasets (mnist-fl-prepare on each edge node) and the Model's
// directory on the cloud node, creates the example's Datasets and starts the driver, which
// creates the jobs.
func (c *campaign) startFL(ctx context.Context) (*flRun, error) {
	if len(c.s.Nodes)-1 < 3 {
		return nil, fmt.Errorf("the federated learning example needs 3 edge nodes, local Sedna has %d", len(c.s.Nodes)-1)
	}
	cloud, _ := c.s.Node(localsedna.CloudNode)
	r := &flRun{c: c, cloud: cloud, nodeIdx: []int{1, 2, 3}, stopCh: make(chan struct{}), done: make(chan struct{})}
	if err := prepareHostDirs(cloud, "/data/mnist-fl-model"); err != nil {
		return nil, err
	}
	for _, i := range r.nodeIdx {
		node, _ := c.s.Node(localsedna.EdgeNodeName(i))
		if err := prepareHostDirs(node, "/data/mnist-fl"); err != nil {
			return nil, err
		}
		if out, err := runProgram(ctx, c.s, "mnist-fl-prepare", "--node", strconv.Itoa(i), "--data-dir", node.HostPath("/data/mnist-fl")); err != nil {
			return nil, fmt.Errorf("preparing the federated learning data of %s: %w\n%s", node.Name, err, out)
		}
	}
	manifest := filepath.Join(localcluster.RepoRoot(), "examples", "federated_learning", "mnist", "mnist-federated-learning.yaml")
	datasets, err := r.parse(manifest)
	if err != nil {
		return nil, err
	}
	for _, d := range datasets {
		if _, err := c.s.Client.SednaV1alpha1().Datasets(c.cfg.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating dataset %s: %w", d.Name, err)
		}
	}
	go r.drive()
	return r, nil
}

// parse reads the example's manifest: its Datasets (returned), Model and job (kept as the
// templates of every job).
func (r *flRun) parse(manifest string) ([]*sednav1.Dataset, error) {
	data, err := os.ReadFile(manifest)
	if err != nil {
		return nil, err
	}
	var datasets []*sednav1.Dataset
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decoding %s: %w", manifest, err)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(raw, &tm); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", manifest, err)
		}
		var obj any
		switch tm.Kind {
		case "Dataset":
			d := &sednav1.Dataset{}
			datasets, obj = append(datasets, d), d
		case "Model":
			r.model = &sednav1.Model{}
			obj = r.model
		case "FederatedLearningJob":
			r.job = &sednav1.FederatedLearningJob{}
			obj = r.job
		default:
			return nil, fmt.Errorf("%s: unexpected kind %q", manifest, tm.Kind)
		}
		if err := json.Unmarshal(raw, obj); err != nil {
			return nil, fmt.Errorf("decoding the %s of %s: %w", tm.Kind, manifest, err)
		}
	}
	if r.model == nil || r.job == nil || len(datasets) != len(r.nodeIdx) {
		return nil, fmt.Errorf("%s: want a Model, a FederatedLearningJob and %d Datasets", manifest, len(r.nodeIdx))
	}
	for _, c := range r.job.Spec.AggregationWorker.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "exit_round" {
				n, err := strconv.ParseInt(e.Value, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("%s: exit_round %q: %w", manifest, e.Value, err)
				}
				r.exitRound = int32(n)
			}
		}
	}
	if r.exitRound <= 0 {
		return nil, fmt.Errorf("%s: the aggregator sets no exit_round", manifest)
	}
	return datasets, nil
}

// create creates job n: the example's Model and job, named mnist-fl-model-<n> and mnist-fl-<n>,
// the Model's file in /data/mnist-fl-model/<n>/ (prepared here, writable for the images' user).
// It retries through apiserver and etcd restarts; an object a lost answer already created is
// taken.
func (r *flRun) create(ctx context.Context, n int) (*flJob, error) {
	model := r.model.DeepCopy()
	model.Name = fmt.Sprintf("%s-%d", r.model.Name, n)
	dir := fmt.Sprintf("/data/mnist-fl-model/%d", n)
	model.Spec.URL = dir + "/" + filepath.Base(r.model.Spec.URL)
	if err := prepareHostDirs(r.cloud, dir); err != nil {
		return nil, err
	}
	job := r.job.DeepCopy()
	job.Name = fmt.Sprintf("%s-%d", r.job.Name, n)
	job.Spec.AggregationWorker.Model.Name = model.Name
	ns := r.c.cfg.Namespace
	client := r.c.s.Client.SednaV1alpha1()
	retry := func(what string, create func() error) error {
		for {
			err := create()
			if err == nil || apierrors.IsAlreadyExists(err) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.c.logf("chaos: creating %s failed (retrying): %v", what, err)
			sleep(ctx, time.Second)
		}
	}
	if err := retry("model "+model.Name, func() error {
		_, err := client.Models(ns).Create(ctx, model, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	if err := retry("job "+job.Name, func() error {
		_, err := client.FederatedLearningJobs(ns).Create(ctx, job, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	now := time.Now()
	return &flJob{name: job.Name, started: now, roundAt: now}, nil
}

// drive creates a job, follows it until it ends (Complete or Failed), and creates the next,
// until stop; the job running then is left to the check.
func (r *flRun) drive() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stopCh
		cancel()
	}()
	for n := 1; ctx.Err() == nil; n++ {
		j, err := r.create(ctx, n)
		if err != nil {
			return // stopped
		}
		r.mu.Lock()
		r.jobs = append(r.jobs, j)
		r.mu.Unlock()
		r.c.logf("chaos: started federated learning job %s", j.name)
		for ctx.Err() == nil && !r.observe(ctx, j) {
			sleep(ctx, time.Second)
		}
		if ctx.Err() == nil {
			r.mu.Lock()
			r.c.logf("chaos: federated learning job %s ended after %s: %s", j.name, j.ended.Sub(j.started).Round(time.Second), j.outcome)
			r.mu.Unlock()
		}
	}
}

// observe reads job j once, updates what is known of it and tells whether it ended.
func (r *flRun) observe(ctx context.Context, j *flJob) bool {
	job, err := r.c.s.Client.SednaV1alpha1().FederatedLearningJobs(r.c.cfg.Namespace).Get(ctx, j.name, metav1.GetOptions{})
	if err != nil {
		return false // the apiserver is away: next time
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if job.Status.Round != j.round {
		j.round, j.roundAt = job.Status.Round, now
	} else if job.Status.Phase != sednav1.PhaseSucceeded && job.Status.Phase != sednav1.PhaseFailed {
		j.stall = max(j.stall, now.Sub(j.roundAt))
	}
	if j.succeeded {
		j.finalRound = job.Status.Round
		j.accuracy, j.accErr = accuracyOf(job.Status.Metrics)
	}
	if !j.ended.IsZero() {
		return true
	}
	gen := job.Generation
	j.stranded = ""
	if c := apimeta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionTrainersStranded); c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen {
		j.stranded = c.Message
	}
	if c := apimeta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionFailed); c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen {
		j.ended, j.outcome = now, fmt.Sprintf("Failed at round %d (%s: %s)", job.Status.Round, c.Reason, c.Message)
		return true
	}
	if c := apimeta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionComplete); c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen {
		j.ended, j.succeeded, j.finalRound, j.roundAtComplete = now, true, job.Status.Round, job.Status.Round
		j.accuracy, j.accErr = accuracyOf(job.Status.Metrics)
		j.outcome = "Succeeded"
		return true
	}
	return false
}

// settled reads job j and tells whether its status is final: ended, and if it succeeded,
// showing the last round and an accuracy; or saying it cannot end (TrainersStranded).
func (r *flRun) settled(ctx context.Context, j *flJob) bool {
	r.observe(ctx, j)
	r.mu.Lock()
	defer r.mu.Unlock()
	if j.ended.IsZero() {
		return j.stranded != ""
	}
	return !j.succeeded || (j.finalRound == r.exitRound && j.accErr == nil)
}

// accuracyOf reads accuracy from status.metrics ("accuracy=0.9531, ...").
func accuracyOf(metrics string) (float64, error) {
	for _, kv := range strings.Split(metrics, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "accuracy="); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no accuracy in status.metrics %q", metrics)
}

// current is the job running now (nil between jobs or after the last ended).
func (r *flRun) current() *flJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.jobs) == 0 || !r.jobs[len(r.jobs)-1].ended.IsZero() {
		return nil
	}
	return r.jobs[len(r.jobs)-1]
}

// note records a fault that hit job j.
func (r *flRun) note(j *flJob, f func(*flJob)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(j)
}

// waitRoundOpen waits up to limit for the running job's round to advance (a round closed and
// the next one opened) and returns the job and the round that opened.
func (r *flRun) waitRoundOpen(ctx context.Context, limit time.Duration) (*flJob, int32, bool) {
	j := r.current()
	if j == nil {
		return nil, 0, false
	}
	jobs := r.c.s.Client.SednaV1alpha1().FederatedLearningJobs(r.c.cfg.Namespace)
	job, err := jobs.Get(ctx, j.name, metav1.GetOptions{})
	if err != nil || job.Status.Phase != sednav1.PhaseRunning {
		return nil, 0, false
	}
	from := job.Status.Round
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		sleep(ctx, 50*time.Millisecond)
		job, err := jobs.Get(ctx, j.name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		if job.Status.Phase != sednav1.PhaseRunning {
			return nil, 0, false
		}
		if job.Status.Round != from {
			return j, job.Status.Round + 1, true
		}
	}
	return nil, 0, false
}

// stop ends the driver (no new job) and waits for it; later calls do nothing.
func (r *flRun) stop() {
	r.stopOnce.Do(func() { close(r.stopCh) })
	<-r.done
}

// check is the federated learning invariant after the last fault healed: every job started
// ends within flBound, Succeeded (its rounds and final accuracy printed) or with a Failed
// condition saying why; none is left Running. It adds its rows through add and returns the
// summary line.
func (r *flRun) check(ctx context.Context, healedAt time.Time, add func(inv, want, got string, ok bool)) string {
	r.mu.Lock()
	jobs := append([]*flJob(nil), r.jobs...)
	r.mu.Unlock()
	deadline := healedAt.Add(flBound)
	for _, j := range jobs {
		// Until the job ended and, if it succeeded, its status shows the last round with an
		// accuracy: status converges within the bound, or the rows below say what it shows.
		for ctx.Err() == nil && time.Now().Before(deadline) && !r.settled(ctx, j) {
			sleep(ctx, time.Second)
		}
		r.observe(ctx, j) // the status as it is now, even past the deadline
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ended, succeeded, failed, stranded, kills, atOpen int
	var outcomes, hung, lowAcc, shortRounds []string
	var longest time.Duration
	minAcc := 1.0
	for _, j := range jobs {
		kills += j.aggregatorKills
		atOpen += j.partitionsAtOpen
		longest = max(longest, j.stall)
		if j.ended.IsZero() && j.stranded != "" {
			stranded++
			outcomes = append(outcomes, fmt.Sprintf("%s: Running with TrainersStranded: %s", j.name, j.stranded))
			continue
		}
		if j.ended.IsZero() {
			hung = append(hung, r.describe(ctx, j))
			outcomes = append(outcomes, fmt.Sprintf("%s: not ended", j.name))
			continue
		}
		ended++
		outcome := j.outcome
		if j.succeeded {
			outcome = fmt.Sprintf("Succeeded, %d rounds, accuracy %.4f", j.finalRound, j.accuracy)
			if j.roundAtComplete != j.finalRound {
				outcome += fmt.Sprintf(" (status said round %d when Complete was first seen)", j.roundAtComplete)
			}
		}
		outcomes = append(outcomes, fmt.Sprintf("%s: %s in %s (aggregator killed %d×, %d partitions at an open round, longest %s without a new round)",
			j.name, outcome, j.ended.Sub(j.started).Round(time.Second), j.aggregatorKills, j.partitionsAtOpen, j.stall.Round(time.Second)))
		if !j.succeeded {
			failed++
			continue
		}
		succeeded++
		if j.finalRound != r.exitRound {
			shortRounds = append(shortRounds, fmt.Sprintf("%s: %d", j.name, j.finalRound))
		}
		switch {
		case j.accErr != nil:
			lowAcc = append(lowAcc, fmt.Sprintf("%s: %v", j.name, j.accErr))
		case j.accuracy < flMinAccuracy:
			lowAcc = append(lowAcc, fmt.Sprintf("%s: %.4f", j.name, j.accuracy))
		}
		minAcc = min(minAcc, j.accuracy)
	}
	got := fmt.Sprintf("%d (%d Succeeded, %d Failed with a condition, %d Running with TrainersStranded)", ended+stranded, succeeded, failed, stranded)
	if len(hung) > 0 {
		got += "; not ended: " + strings.Join(hung, "; ")
	}
	add(fmt.Sprintf("federated learning jobs started that ended (Succeeded, or a Failed condition saying why) or say why they cannot (TrainersStranded) within %s of the last fault healing; %d aggregator kills, %d partitions at an open round", flBound, kills, atOpen),
		strconv.Itoa(len(jobs)), got, len(jobs) > 0 && ended+stranded == len(jobs))
	accGot := fmt.Sprintf("lowest %.4f over %d jobs", minAcc, succeeded)
	if succeeded == 0 {
		accGot = "no job succeeded"
	}
	if len(lowAcc) > 0 {
		accGot += "; below: " + strings.Join(lowAcc, ", ")
	}
	add(fmt.Sprintf("final accuracy on the 10,000 test images of every Succeeded federated learning job (a node alone: ≈ 0.40, uninterrupted: 0.955; longest time a Running job's round stood still: %s)", longest.Round(time.Second)),
		fmt.Sprintf("≥ %.2f", flMinAccuracy), accGot, succeeded > 0 && len(lowAcc) == 0)
	roundsGot := fmt.Sprintf("%d of %d", succeeded-len(shortRounds), succeeded)
	if len(shortRounds) > 0 {
		roundsGot += "; status.round of the others: " + strings.Join(shortRounds, ", ")
	}
	add(fmt.Sprintf("Succeeded federated learning jobs whose status shows their last round (exit_round %d), whose accuracy the row above is", r.exitRound),
		strconv.Itoa(succeeded), roundsGot, len(shortRounds) == 0)
	return "federated learning jobs: " + strings.Join(outcomes, "; ") + "; " + r.resends()
}

// resends counts, from the edge nodes' logs, what repaired the status after a lost report: the
// LCs' resends of the trainers' newest reports to a GM that sent a snapshot, and the trainers'
// last reports sent again after their LC refused them.
func (r *flRun) resends() string {
	snapshots, reports, trainerRetries := 0, 0, 0
	for _, n := range r.c.s.Nodes {
		if !n.Edge {
			continue
		}
		logs, _ := filepath.Glob(filepath.Join(n.LogDir(), "*.log"))
		for _, log := range logs {
			data, err := os.ReadFile(log)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(data), "\n") {
				switch {
				case strings.Contains(line, "newest reports again for the GM that sent the snapshot"):
					snapshots++
					if _, after, ok := strings.Cut(line, "reports="); ok {
						if fields := strings.Fields(after); len(fields) > 0 {
							if v, err := strconv.Atoi(fields[0]); err == nil {
								reports += v
							}
						}
					}
				case strings.Contains(line, "sending it again") && strings.Contains(line, "last round's report"):
					trainerRetries++
				}
			}
		}
	}
	return fmt.Sprintf("after %d snapshots the LCs queued %d trainers' newest reports again; trainers sent a refused last report again %d times",
		snapshots, reports, trainerRetries)
}

// describe is where a job that did not end stands (called with r.mu held).
func (r *flRun) describe(ctx context.Context, j *flJob) string {
	job, err := r.c.s.Client.SednaV1alpha1().FederatedLearningJobs(r.c.cfg.Namespace).Get(ctx, j.name, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("%s: %v", j.name, err)
	}
	conds, _ := json.Marshal(job.Status.Conditions)
	return fmt.Sprintf("%s: %s at round %d (round unchanged for %s), active %d, succeeded %d, conditions %s", j.name, job.Status.Phase,
		job.Status.Round, time.Since(j.roundAt).Round(time.Second), job.Status.Active, job.Status.Succeeded, conds)
}
