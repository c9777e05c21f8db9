//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sedna-go/sedna/examples/lifelong_learning/mnist/ll"
	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/test/e2e/framework"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
)

// llMeasureResult is the RESULT line of mnist-ll-drive measure.
type llMeasureResult struct {
	Tasks map[string]ll.TaskAccuracy `json:"tasks"`
	Stats ll.InferStats              `json:"stats"`
}

// kbSnapshot reads the knowledge base's index and every model it names through build/kb's Service
// (read token), keyed by file name: the bytes' SHA-256.
func kbSnapshot(t *testing.T) (*kb.Index, map[string]string) {
	t.Helper()
	ctx := context.Background()
	base, err := framework.Sedna.KBURL(ctx)
	require.NoError(t, err)
	download := func(file string) []byte {
		request, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/knowledgebase/file/download?files="+url.QueryEscape(file), nil)
		require.NoError(t, err)
		request.Header.Set("Authorization", "Bearer "+framework.Sedna.KBTokens().Read)
		response, err := http.DefaultClient.Do(request)
		require.NoError(t, err)
		defer func() { _ = response.Body.Close() }()
		content, err := io.ReadAll(response.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, response.StatusCode, "%s: %s", file, content)
		return content
	}
	index, err := kb.ParseIndex(download("index.json"))
	require.NoError(t, err)
	files := map[string]string{}
	for _, task := range index.Tasks {
		parsed, err := url.Parse(task.Model.URL)
		require.NoError(t, err)
		file := parsed.Query().Get("files")
		require.NotEmpty(t, file, "task %s: model URL %s", task.ID, task.Model.URL)
		sum := sha256.Sum256(download(file))
		files[file] = hex.EncodeToString(sum[:])
	}
	return index, files
}

func taskIDs(index *kb.Index) []string {
	var ids []string
	for _, task := range index.Tasks {
		ids = append(ids, task.ID)
	}
	slices.Sort(ids)
	return ids
}

// The MNIST lifelong learning example on local Sedna, with build/kb as the knowledge base: round 1
// learns upright digits from the Dataset; the inference worker flags a stream's 90° digits as
// unseen (detection measured), they are labelled into the Dataset, and round 2 learns a model for
// the new task. Between the rounds the knowledge base is SIGKILLed (its pod restarts it on the
// same claim: nothing is lost) and then taken down entirely, and the inference worker keeps
// answering from its cache. At the end each rotation is routed to its own model and the first
// task has lost at most 2 points.
func TestLifelongLearningMNIST(t *testing.T) {
	ns := framework.NewNamespace(t)
	ctx := context.Background()
	// As an administrator does for a namespace that runs lifelong learning jobs.
	require.NoError(t, framework.Sedna.CopyKBTokenSecret(ctx, ns))
	node, ok := framework.Sedna.Node("edge-node-1")
	require.True(t, ok)
	framework.PrepareHostPaths(t, node, filepath.Join(localcluster.RepoRoot(), "examples", "lifelong_learning", "mnist", "mnist-lifelong-learning.yaml"))
	dataDir := node.HostPath("/data/mnist-ll")
	runResult(t, &struct{}{}, "mnist-ll-drive", "init", "--dataset-dir", dataDir, "--samples", "1500")

	framework.Apply(t, ns, filepath.Join(localcluster.RepoRoot(), "examples", "lifelong_learning", "mnist", "mnist-lifelong-learning.yaml"))
	jobs := framework.Sedna.Client.SednaV1alpha1().LifelongLearningJobs(ns)
	job := func() *sednav1.LifelongLearningJob {
		j, err := jobs.Get(ctx, "mnist-ll", metav1.GetOptions{})
		require.NoError(t, err)
		return j
	}
	deployedRounds := func(j *sednav1.LifelongLearningJob) int {
		n := 0
		for _, r := range j.Status.Rounds {
			if r.Deployed {
				n++
			}
		}
		return n
	}
	inferURL := "http://" + node.IP + ":8000"
	client := &ll.InferClient{BaseURL: inferURL, HTTP: &http.Client{Timeout: 5 * time.Second}}
	waitForTasks := func(rounds int, tasks ...string) {
		framework.Eventually(t, 3*time.Minute, fmt.Sprintf("round %d deployed and the worker serving %v", rounds, tasks), func() (bool, string) {
			j := job()
			if deployedRounds(j) < rounds {
				return false, fmt.Sprintf("round=%d stage=%s/%s deployed rounds=%d", j.Status.Round, j.Status.Stage, j.Status.StageState, deployedRounds(j))
			}
			// A deploy rolls the inference Deployment: measure only once the rollout is over and
			// no old pod is left to be stopped under the measurement.
			if done, why := inferenceRolledOut(ctx, t, ns, "mnist-ll-deployment-inference"); !done {
				return false, why
			}
			stats, err := client.Stats(ctx)
			if err != nil {
				return false, err.Error()
			}
			served := slices.Clone(stats.Tasks)
			slices.Sort(served)
			return slices.Equal(served, tasks), fmt.Sprintf("worker serves %v", served)
		})
	}

	// Round 1: the first task.
	waitForTasks(1, ll.TaskID(0))
	var afterFirst llMeasureResult
	runResult(t, &afterFirst, "mnist-ll-drive", "measure", "--url", inferURL, "--rotations", "0,90")
	first := afterFirst.Tasks[ll.TaskID(0)]
	require.GreaterOrEqual(t, first.Accuracy, 0.80, "round 1's model on upright test digits")

	// Between the rounds: SIGKILL the knowledge base; its pod restarts it on the same claim.
	indexBefore, filesBefore := kbSnapshot(t)
	require.Equal(t, []string{ll.TaskID(0)}, taskIDs(indexBefore))
	oldPID, err := framework.Sedna.KillKB()
	require.NoError(t, err)
	framework.Eventually(t, 2*time.Minute, "the knowledge base to be restarted", func() (bool, string) {
		pid, err := framework.Sedna.KBPID()
		if err != nil || pid == oldPID {
			return false, fmt.Sprintf("pid %d (killed %d): %v", pid, oldPID, err)
		}
		return framework.Sedna.WaitForKB(ctx) == nil, "not answering"
	})
	indexAfter, filesAfter := kbSnapshot(t)
	require.Equal(t, indexBefore, indexAfter, "the index survives SIGKILL")
	require.Equal(t, filesBefore, filesAfter, "the models survive SIGKILL")

	// The knowledge base down: no pod at all. The worker answers from its cached index and models.
	framework.Kubectl(t, "scale", "deployment/sedna-kb", "-n", localsedna.SednaNamespace, "--replicas=0")
	framework.Eventually(t, 2*time.Minute, "the knowledge base to be down", func() (bool, string) {
		_, err := framework.Sedna.KBPID()
		return err != nil, fmt.Sprintf("still running: %v", err)
	})
	var whileDown llMeasureResult
	runResult(t, &whileDown, "mnist-ll-drive", "measure", "--url", inferURL, "--rotations", "0")
	require.Equal(t, first.Accuracy, whileDown.Tasks[ll.TaskID(0)].Accuracy, "the same models answer while the knowledge base is down")
	framework.Kubectl(t, "scale", "deployment/sedna-kb", "-n", localsedna.SednaNamespace, "--replicas=1")
	require.NoError(t, framework.Sedna.WaitForKB(ctx))
	indexBack, filesBack := kbSnapshot(t)
	require.Equal(t, indexBefore, indexBack, "a new pod on the same claim has the index")
	require.Equal(t, filesBefore, filesBack)

	// A new task appears in the stream: 90° digits among upright ones.
	var streamed struct {
		Stream ll.StreamReport `json:"stream"`
		Labels ll.LabelReport  `json:"labels"`
	}
	runResult(t, &streamed, "mnist-ll-drive", "stream", "--url", inferURL, "--dataset-dir", dataDir,
		"--unseen-dir", filepath.Join(dataDir, "output", "unseen"), "--from", "20000", "--new-rotation", "90", "--new", "1500",
		"--known-rotation", "0", "--known", "500")
	t.Logf("unseen-task detection of 90° among 0°: AUROC %.4f, precision %.4f, recall %.4f, %d of %d flagged; labelled %v",
		streamed.Stream.AUROC, streamed.Stream.Precision, streamed.Stream.Recall, streamed.Stream.Flagged, streamed.Stream.Streamed, streamed.Labels.Labelled)
	require.GreaterOrEqual(t, streamed.Stream.AUROC, 0.90, "unseen-task detection")
	require.Greater(t, streamed.Labels.Labelled["90"], 700, "labelled 90° images (the train pool needs > 500)")

	// Round 2: the new task joins the knowledge base; the old task's model is untouched.
	waitForTasks(2, ll.TaskID(0), ll.TaskID(90))
	var afterSecond llMeasureResult
	runResult(t, &afterSecond, "mnist-ll-drive", "measure", "--url", inferURL, "--rotations", "0,90")
	old, fresh := afterSecond.Tasks[ll.TaskID(0)], afterSecond.Tasks[ll.TaskID(90)]
	t.Logf("accuracy on 1,000 test digits per task: after round 1: 0° %.2f%%, 90° %.2f%% (not learned); after round 2: 0° %.2f%%, 90° %.2f%%; "+
		"routed to their own model after round 2: 0° %.2f%%, 90° %.2f%%; 0° lost %.2f points",
		100*first.Accuracy, 100*afterFirst.Tasks[ll.TaskID(90)].Accuracy, 100*old.Accuracy, 100*fresh.Accuracy,
		100*old.Routed, 100*fresh.Routed, 100*(first.Accuracy-old.Accuracy))
	require.LessOrEqual(t, first.Accuracy-old.Accuracy, 0.02, "the first task is not forgotten")
	require.GreaterOrEqual(t, fresh.Accuracy, 0.75, "the new task is learned")
	require.GreaterOrEqual(t, fresh.Accuracy, afterFirst.Tasks[ll.TaskID(90)].Accuracy+0.20, "the new task's model beats the old one on it")
	require.GreaterOrEqual(t, old.Routed, 0.80, "upright digits go to their model")
	require.GreaterOrEqual(t, fresh.Routed, 0.80, "90° digits go to their model")

	indexFinal, filesFinal := kbSnapshot(t)
	require.Equal(t, []string{ll.TaskID(0), ll.TaskID(90)}, taskIDs(indexFinal))
	for file, sum := range filesBefore {
		require.Equal(t, sum, filesFinal[file], "round 2 left the first task's model %s alone", file)
	}
	j := job()
	require.NotNil(t, j.Status.KnowledgeBase)
	var models []string
	for _, m := range j.Status.KnowledgeBase.AIModels.ListOfAIModels {
		models = append(models, m.ModelID)
	}
	slices.Sort(models)
	require.Equal(t, []string{ll.TaskID(0), ll.TaskID(90)}, models, "status.knowledgeBase: %+v", j.Status.KnowledgeBase)
	require.Equal(t, 2, j.Status.KnowledgeBase.AIModels.NumberOfAIModels)
	require.Positive(t, j.Status.KnowledgeBase.Samples.NumberOfLabeledUnseenSample,
		"status.knowledgeBase counts the labelled samples of the new task (an eval report does not reset them)")
	t.Logf("status.knowledgeBase: %s", mustJSON(t, j.Status.KnowledgeBase))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	encoded, err := json.Marshal(v)
	require.NoError(t, err)
	return string(encoded)
}

// inferenceRolledOut tells whether the Deployment has rolled out its latest spec and is down to
// its own ready pods, none of them terminating.
func inferenceRolledOut(ctx context.Context, t *testing.T, ns, name string) (bool, string) {
	t.Helper()
	d, err := framework.Sedna.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.AvailableReplicas != want || st.Replicas != want {
		return false, fmt.Sprintf("deployment %s rolling out: %+v", name, st)
	}
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return false, err.Error()
	}
	pods, err := framework.Sedna.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return false, err.Error()
	}
	if int32(len(pods.Items)) != want {
		return false, fmt.Sprintf("deployment %s has %d pods (old ones still stopping)", name, len(pods.Items))
	}
	return true, ""
}
