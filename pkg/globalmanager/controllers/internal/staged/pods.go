package staged

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

const (
	// MaxStageAttempts is how many pods a stage of a round gets before it fails.
	MaxStageAttempts = 3
	// RetryBaseDelay is the wait after the first failed try; it doubles with every further one.
	RetryBaseDelay = 10 * time.Second
	// ReportGrace is how long a stage may stay open after its pod succeeded while the job's LC
	// is connected: the worker reports before it exits (upstream's library retries for 15 s) and
	// a connected LC relays at once, so a longer silence means the report was lost and the stage
	// fails rather than hanging the round. Time while the LC is offline does not count: an edge
	// working on its own keeps the report in its outbox and sends it when it reconnects.
	ReportGrace = 2 * time.Minute
)

// RoundLabel is the label of a stage pod naming the round it serves:
// "<kind lower>.sedna.io/round".
func RoundLabel(kind string) string { return strings.ToLower(kind) + ".sedna.io/round" }

// AttemptLabel is the label of a stage pod naming which try of its round's stage it is.
func AttemptLabel(kind string) string { return strings.ToLower(kind) + ".sedna.io/attempt" }

// WorkerTypeLabel is the worker type label of workers.Labels.
func WorkerTypeLabel(kind string) string { return strings.ToLower(kind) + ".sedna.io/worker-type" }

// StagePodName is the deterministic name of a stage pod: "<job>-<stage>-<round>" for the first
// try, "<job>-<stage>-<round>-<attempt>" for retries. A name per try keeps failed pods (and their
// logs) while the retry runs, and a cache that has not seen a created pod yet cannot make the
// controller create a second one: the create fails with AlreadyExists.
func StagePodName(job, workerType string, round int32, attempt int) string {
	name := fmt.Sprintf("%s-%s-%d", job, strings.ToLower(workerType), round)
	if attempt > 1 {
		name += "-" + strconv.Itoa(attempt)
	}
	return name
}

// StageTemplate defaults a stage pod's restart policy to Never, not upstream's OnFailure: GM
// retries a failed stage with a new pod (MaxStageAttempts, with backoff), and under OnFailure a
// crashing worker would stay a Running pod in CrashLoopBackOff, so the stage could never fail and
// the round would hang.
func StageTemplate(template corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	template = *template.DeepCopy()
	if template.Spec.RestartPolicy == "" {
		template.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
	return template
}

// NewStagePod builds the pod of a round's stage try from its worker.
func NewStagePod(owner workers.Owner, workerType string, round int32, attempt int, worker workers.Worker) (*corev1.Pod, error) {
	template, err := worker.PodTemplate()
	if err != nil {
		return nil, fmt.Errorf("building the %s worker of round %d: %w", workerType, round, err)
	}
	return workers.NewPod(owner, workerType, StagePodName(owner.GetName(), workerType, round, attempt), template, map[string]string{
		RoundLabel(owner.Kind): strconv.Itoa(int(round)), AttemptLabel(owner.Kind): strconv.Itoa(attempt),
	})
}

// Refusal is a location in the LC's stage input that lies outside what the job declares.
type Refusal struct {
	Env, URL string
	Err      error
}

// BuildFunc builds the pod of a stage try, or says why it cannot: a blocker (the job's
// references), a refusal (the LC's input), or an error to retry.
type BuildFunc func(ctx context.Context, attempt int) (*corev1.Pod, *Blocker, *Refusal, error)

// Stager keeps the stage pods of a controller's jobs.
type Stager struct {
	KubeClient kubernetes.Interface
	Pods       corelisters.PodLister
	Recorder   record.EventRecorder
	Now        func() time.Time
	// RetryDelay is the wait after the first failed try (RetryBaseDelay unless a test sets it).
	RetryDelay time.Duration
	// LCConnectedSince tells since when the LC of a node is connected; nil counts every node as
	// connected since ever.
	LCConnectedSince func(node string) (time.Time, bool)
}

// Stage is one stage of one job to converge.
type Stage struct {
	Owner workers.Owner
	// Job is the owner as events are recorded on it.
	Job        runtime.Object
	WorkerType string
	// Node is the node of the job's LC, whose connection the report grace counts.
	Node  string
	Build BuildFunc
}

// StagePods are the job's pods of one stage and round, oldest try first.
func (s *Stager) StagePods(owner workers.Owner, workerType string, round int32) ([]*corev1.Pod, error) {
	selector := workers.Labels(owner, workerType)
	selector[RoundLabel(owner.Kind)] = strconv.Itoa(int(round))
	pods, err := s.Pods.Pods(owner.GetNamespace()).List(labels.SelectorFromSet(selector))
	if err != nil {
		return nil, fmt.Errorf("listing the %s pods of round %d: %w", workerType, round, err)
	}
	pods = slices.DeleteFunc(pods, func(p *corev1.Pod) bool { return !workers.IsControlledBy(p, owner) })
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return podAttempt(a, owner.Kind) - podAttempt(b, owner.Kind) })
	return pods, nil
}

func podAttempt(pod *corev1.Pod, kind string) int {
	n, _ := strconv.Atoi(pod.Labels[AttemptLabel(kind)]) // a missing label sorts first
	return n
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *Stager) failStage(status Status, generation int64, reason, message string) {
	status.StageState = sednav1.StageFailed
	meta.SetStatusCondition(status.Conditions, metav1.Condition{
		Type: sednav1.ConditionFailed, Status: metav1.ConditionTrue, ObservedGeneration: generation, Reason: reason, Message: message,
	})
}

// Converge keeps one pod for the current stage while it is Ready, Starting or Running, and
// derives the stage state from it: Starting once created, Running once running (a pod that
// succeeded stays Running: the LC completes the stage from the worker's report). A failed pod is
// replaced after an exponential delay up to MaxStageAttempts tries; then the stage fails. A pod
// that disappears is created again. A pod that succeeded without its worker's report arriving
// within ReportGrace (counted while the LC is connected) fails the stage. It returns how long to
// wait before a retry.
func (s *Stager) Converge(ctx context.Context, stage Stage, status Status) (*Blocker, time.Duration, error) {
	if status.Round == 0 || StateRank(status.StageState) == 0 {
		return nil, 0, nil
	}
	generation, workerType := stage.Owner.GetGeneration(), stage.WorkerType
	pods, err := s.StagePods(stage.Owner, workerType, status.Round)
	if err != nil {
		return nil, 0, err
	}
	var last *corev1.Pod
	attempts := 0
	if len(pods) > 0 {
		last = pods[len(pods)-1]
		attempts = podAttempt(last, stage.Owner.Kind)
	}
	switch {
	case last != nil && last.Status.Phase == corev1.PodSucceeded:
		AdvanceState(status.LearningProgress, sednav1.StageRunning)
		finished := workers.PodFinished(last)
		if finished.IsZero() {
			return nil, ReportGrace, nil // no finish time yet: nothing to measure the silence from
		}
		// The silence counts from when both hold: the pod succeeded and the LC is connected. An
		// offline edge keeps the report and sends it on reconnect, which enqueues the job.
		connectedSince, connected := time.Time{}, true
		if s.LCConnectedSince != nil {
			connectedSince, connected = s.LCConnectedSince(stage.Node)
		}
		if !connected {
			return nil, 0, nil
		}
		silence := s.Now().Sub(latest(finished, connectedSince))
		if silence < ReportGrace {
			return nil, ReportGrace - silence, nil
		}
		s.failStage(status, generation, ReasonWorkerDidNotReport,
			fmt.Sprintf("round %d: the %s pod %s succeeded %s ago but its worker's report did not come in %s with the LC connected",
				status.Round, workerType, last.Name, s.Now().Sub(finished).Round(time.Second), silence.Round(time.Second)))
		return nil, 0, nil
	case last != nil && last.Status.Phase == corev1.PodRunning:
		AdvanceState(status.LearningProgress, sednav1.StageRunning)
		return nil, 0, nil
	case last != nil && last.Status.Phase != corev1.PodFailed:
		AdvanceState(status.LearningProgress, sednav1.StageStarting)
		return nil, 0, nil
	case last != nil && attempts >= MaxStageAttempts:
		s.failStage(status, generation, ReasonStagePodFailed,
			fmt.Sprintf("round %d: the %s pod failed %d times, last %s: %s", status.Round, workerType, attempts, last.Name, workers.PodFailure(last)))
		return nil, 0, nil
	case last != nil:
		delay := s.RetryDelay << (attempts - 1)
		if wait := workers.PodFinished(last).Add(delay).Sub(s.Now()); wait > 0 {
			return nil, wait, nil
		}
	}

	attempt := attempts + 1
	pod, block, refused, err := stage.Build(ctx, attempt)
	if refused != nil {
		s.failStage(status, generation, ReasonURLRefused,
			fmt.Sprintf("round %d: the %s stage's %s %q was refused: %v", status.Round, workerType, refused.Env, refused.URL, refused.Err))
		return nil, 0, nil
	}
	if block != nil || err != nil {
		return block, 0, err
	}
	namespace := stage.Owner.GetNamespace()
	if _, err := s.KubeClient.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		s.Recorder.Eventf(stage.Job, corev1.EventTypeWarning, "FailedCreate", "Creating pod %s: %v", pod.Name, err)
		return nil, 0, fmt.Errorf("creating pod %s/%s: %w", namespace, pod.Name, err)
	} else if err == nil {
		if last != nil {
			s.Recorder.Eventf(stage.Job, corev1.EventTypeWarning, "StagePodRetried", "Created pod %s, try %d of %d, after pod %s failed: %s",
				pod.Name, attempt, MaxStageAttempts, last.Name, workers.PodFailure(last))
		} else {
			s.Recorder.Eventf(stage.Job, corev1.EventTypeNormal, "Created", "Created pod %s", pod.Name)
		}
	}
	AdvanceState(status.LearningProgress, sednav1.StageStarting)
	return nil, 0, nil
}

// DeleteOldRoundPods removes the stage pods of rounds before round: their stage is over, and
// keeping every round's pods would grow without bound. The current round's pods stay for logs.
func (s *Stager) DeleteOldRoundPods(ctx context.Context, owner workers.Owner, round int32) error {
	if round <= 1 {
		return nil
	}
	namespace := owner.GetNamespace()
	pods, err := s.Pods.Pods(namespace).List(labels.SelectorFromSet(workers.OwnerSelector(owner)))
	if err != nil {
		return fmt.Errorf("listing the pods of %s %s/%s: %w", owner.Kind, namespace, owner.GetName(), err)
	}
	var errs []error
	for _, pod := range pods {
		n, err := strconv.Atoi(pod.Labels[RoundLabel(owner.Kind)])
		if err != nil || int32(n) >= round || pod.DeletionTimestamp != nil || !workers.IsControlledBy(pod, owner) {
			continue
		}
		err = s.KubeClient.CoreV1().Pods(namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting pod %s/%s of round %d: %w", namespace, pod.Name, n, err))
		}
	}
	return errors.Join(errs...)
}
