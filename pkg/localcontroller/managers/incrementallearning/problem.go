package incrementallearning

import (
	"context"
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// Problem is what keeps the LC from carrying out its part of the current stage: the job keeps
// its state, the step is retried with backoff, and GM shows the problem as the job's Stalled
// condition until a stage report without one arrives.
type Problem struct {
	// Reason is a CamelCase word, one of the Reason constants.
	Reason string `json:"reason"`
	// Message names the path or URL and, for a system error, the errno name, e.g.
	// "writing /data/il/output/data/train/3/data.txt: open ...: read-only file system (EROFS)".
	Message string `json:"message"`
}

// Reasons of a Problem.
const (
	// ReasonOutputNotWritable: a round's data file or output directory under spec.outputDir
	// cannot be written.
	ReasonOutputNotWritable = "OutputNotWritable"
	// ReasonDeployNotWritable: the trained model cannot be put in place (the hot-update
	// directory or the deploy Model's URL cannot be written).
	ReasonDeployNotWritable = "DeployNotWritable"
	// ReasonDatasetIndexNotReadable: the Dataset's index file cannot be read.
	ReasonDatasetIndexNotReadable = "DatasetIndexNotReadable"
)

const (
	// DefaultRetryBackoff is the first wait before a blocked step is tried again; it doubles
	// with every failure up to DefaultMaxRetryBackoff.
	DefaultRetryBackoff = 5 * time.Second
	// DefaultMaxRetryBackoff bounds the wait between tries of a blocked step.
	DefaultMaxRetryBackoff = 5 * time.Minute
)

// describe is err's message with the errno name appended when a system call failed, so that a
// condition reads "... read-only file system (EROFS)".
func describe(err error) string {
	message := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			message += " (" + name + ")"
		}
	}
	return message
}

// mayTry reports whether a step that may be blocked for reason is due: it is, unless it failed
// last time and its backoff has not passed.
func (j *job) mayTry(reason string) bool {
	return j.problem == nil || j.problem.Reason != reason || !j.m.opts.Now().Before(j.retryAt)
}

// blocked records that a step failed for reason: the state stays, the step is tried again after
// the backoff, and GM gets a stage report of the current state with the problem when it is new
// or changed (not on every retry).
func (j *job) blocked(ctx context.Context, reason string, err error) {
	logger := klog.FromContext(ctx)
	if ctx.Err() != nil {
		// The LC is stopping: the step was cut short, nothing is wrong with the node.
		logger.V(4).Info("Step interrupted by shutdown", "reason", reason, "err", err)
		return
	}
	problem := &Problem{Reason: reason, Message: describe(err)}
	if j.problem == nil || j.problem.Reason != reason {
		j.backoff = j.m.opts.RetryBackoff
	} else {
		j.backoff = min(2*j.backoff, j.m.opts.MaxRetryBackoff)
	}
	j.retryAt = j.m.opts.Now().Add(j.backoff)
	if j.problem != nil && *j.problem == *problem {
		logger.V(2).Info("The job is still blocked; retrying later", "reason", reason, "err", err, "retryIn", j.backoff)
		return
	}
	logger.Error(err, "The job is blocked; keeping its state, telling GM and retrying later", "reason", reason, "state", j.rec().State.String(), "retryIn", j.backoff)
	j.problem, j.clearPending = problem, false
	j.reportState(ctx)
}

// unblocked records that a step that may be blocked for reason succeeded. If it was blocked, GM
// is told (by the next stage report, or reportClear at the end of the pass).
func (j *job) unblocked(ctx context.Context, reason string) {
	if j.problem == nil || j.problem.Reason != reason {
		return
	}
	klog.FromContext(ctx).Info("The job is no longer blocked", "reason", reason)
	j.problem, j.clearPending, j.backoff = nil, true, 0
}

// reportClear sends a stage report of the current state without a problem when a problem was
// cleared and no transition has reported since.
func (j *job) reportClear(ctx context.Context) {
	if j.clearPending {
		j.clearPending = false
		j.reportState(ctx)
	}
}

// reportState queues a stage report of the current state (phase, status and round unchanged, so
// GM takes no transition from it) carrying the current problem, if any. It is not LastReport:
// sending it again later would repeat a problem that may be gone.
func (j *job) reportState(ctx context.Context) {
	content, err := EncodeStateReport(j.rec().State, j.problem)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Encoding a stage report failed")
		return
	}
	if err := j.saved.Queue(ctx, content); err != nil {
		klog.FromContext(ctx).Error(err, "Saving a stage report failed; it is sent with the next change")
	}
}
