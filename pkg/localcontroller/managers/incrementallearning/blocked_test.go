package incrementallearning

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
)

// problems returns the problems of the stage reports, nil for a report without one.
func (l *lc) problems() []*Problem {
	var problems []*Problem
	for _, report := range l.stageReports() {
		problems = append(problems, report.Problem)
	}
	return problems
}

func (l *lc) fastRetries() {
	l.m.opts.RetryBackoff, l.m.opts.MaxRetryBackoff = 20*time.Millisecond, 80*time.Millisecond
}

// TestAnOutputDirOutsideTheWriteRootsBlocksTheRound: the train data cannot be written, so the job
// stays in Train/Waiting, tells GM once (the problem names the path), keeps retrying, and the
// report that follows the fix carries no problem.
func TestAnOutputDirOutsideTheWriteRootsBlocksTheRound(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.fastRetries()
	job := newJob(false)
	job.Spec.OutputDir = "/elsewhere/out"
	l.setup(job)
	l.run()
	n.appendSamples(t, 0, 10)

	l.waitForState("Train/Waiting#0")
	l.waitPasses(10) // several retries
	reports := l.stageReports()
	require.Len(t, reports, 1, "the problem is reported once, not on every retry: %v", l.states())
	problem := reports[0].Problem
	require.NotNil(t, problem)
	require.Equal(t, ReasonOutputNotWritable, problem.Reason)
	require.Contains(t, problem.Message, "/elsewhere/out/data/train/1/data.txt")
	require.Contains(t, problem.Message, "not below any directory this LC may write (/data)")
	require.Equal(t, State{Stage: sednav1.StageTrain, StageState: sednav1.StageWaiting}, l.savedRecord().State, "the state did not move")
	require.NoDirExists(t, filepath.Join(n.rootfs, "elsewhere"))

	job = newJob(false)
	l.publish(job)
	l.waitForState("Train/Ready#1")
	reports = l.stageReports()
	require.Nil(t, reports[len(reports)-1].Problem, "the transition after the fix clears the problem")
	require.Equal(t, 8, strings.Count(n.readFile(t, "/data/out/data/train/1/data.txt"), "\n"))
}

// TestAMissingDatasetIndexIsAProblemUntilItAppears: no transition follows the fix, so the LC
// sends one report of the unchanged state without the problem.
func TestAMissingDatasetIndexIsAProblemUntilItAppears(t *testing.T) {
	n := newNode(t)
	require.NoError(t, os.Remove(filepath.Join(n.rootfs, indexPath)))
	l := startLC(t, n)
	l.fastRetries()
	job := newJob(false)
	job.Spec.TrainSpec.Trigger.Condition.Threshold = 1e9
	l.setup(job)
	l.run()
	l.waitForState("Train/Waiting#0")
	problems := l.problems()
	require.Len(t, problems, 1)
	require.Equal(t, ReasonDatasetIndexNotReadable, problems[0].Reason)
	require.Contains(t, problems[0].Message, indexPath)

	n.writeFile(t, indexPath, "a.jpg\n")
	require.Eventually(t, func() bool { return len(l.problems()) == 2 }, waitFor, testPeriodPoll)
	l.waitPasses(3)
	require.Equal(t, []string{"Train/Waiting#0", "Train/Waiting#0"}, l.states())
	require.Equal(t, []*Problem{problems[0], nil}, l.problems())
}

// TestADeployTargetOutsideTheWriteRootsKeepsDeployReady: putting the model in place fails on the
// node's side, so the round waits in Deploy/Ready with the problem instead of failing.
func TestADeployTargetOutsideTheWriteRootsKeepsDeployReady(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.fastRetries()
	l.setup(newJob(false))
	l.put("model", "deploy", sednav1.Model{Spec: sednav1.ModelSpec{URL: "/opt/models/deploy.pb", Format: "pb"}})
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#1")
	n.writeFile(t, "/data/out/train/1/model.pb", "trained-1")
	require.NoError(t, l.post(trainCompletedMessage("/data/out/train/1/model.pb")))
	require.NoError(t, l.post(evalCompletedMessage(0.9, 0.8)))
	l.waitPasses(5)
	states := l.states()
	require.Equal(t, "Deploy/Ready#1", states[len(states)-1], "%v", states)
	problems := l.problems()
	problem := problems[len(problems)-1]
	require.NotNil(t, problem)
	require.Equal(t, ReasonDeployNotWritable, problem.Reason)
	require.Contains(t, problem.Message, "/opt/models/deploy.pb")
	require.NotContains(t, strings.Join(states, " "), "Deploy/Failed")
	require.Equal(t, State{Stage: sednav1.StageDeploy, StageState: sednav1.StageReady, Round: 1}, l.savedRecord().State)
}

// The read-only case needs a real read-only mount: root writes through any mode bits. The test
// runs itself again in a private mount namespace (unshare -m), where the child bind-mounts the
// output directory read-only, checks the EROFS problem, and makes it writable again.
const erofsChildEnv = "SEDNA_IL_EROFS_CHILD"

func TestAReadOnlyOutputDirIsReportedWithItsErrno(t *testing.T) {
	if os.Getenv(erofsChildEnv) == "1" {
		readOnlyOutputDirChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace; the outside-the-roots tests cover the reporting")
	}
	cmd := exec.Command("unshare", "-m", "--propagation", "private", os.Args[0],
		"-test.run=^TestAReadOnlyOutputDirIsReportedWithItsErrno$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), erofsChildEnv+"=1")
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "child in a private mount namespace:\n%s", output)
	require.Contains(t, string(output), "--- PASS: TestAReadOnlyOutputDirIsReportedWithItsErrno")
}

func mount(t *testing.T, args ...string) {
	t.Helper()
	output, err := exec.Command("mount", args...).CombinedOutput()
	require.NoError(t, err, "mount %v: %s", args, output)
}

func readOnlyOutputDirChild(t *testing.T) {
	n := newNode(t)
	out := filepath.Join(n.rootfs, outputDir)
	require.NoError(t, os.MkdirAll(out, 0o755))
	mount(t, "--bind", out, out)
	mount(t, "-o", "remount,ro,bind", out)
	t.Cleanup(func() { _ = exec.Command("umount", out).Run() })
	require.ErrorIs(t, hostfs.CheckWritable(out), syscall.EROFS, "the bind mount is read-only")

	l := startLC(t, n)
	l.fastRetries()
	l.setup(newJob(false))
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Waiting#0")
	problem := l.stageReports()[0].Problem
	require.NotNil(t, problem)
	require.Equal(t, ReasonOutputNotWritable, problem.Reason)
	require.Contains(t, problem.Message, "/data/out/data/train/1/data.txt")
	require.Contains(t, problem.Message, "read-only file system (EROFS)")
	l.waitPasses(5)
	require.Len(t, l.stageReports(), 1)
	require.Equal(t, State{Stage: sednav1.StageTrain, StageState: sednav1.StageWaiting}, l.savedRecord().State)

	mount(t, "-o", "remount,rw,bind", out)
	l.waitForState("Train/Ready#1")
	reports := l.stageReports()
	require.Nil(t, reports[len(reports)-1].Problem)
}
