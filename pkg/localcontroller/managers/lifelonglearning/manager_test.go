package lifelonglearning

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/managertest"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

const (
	testNamespace = "default"
	testJob       = "mnist-ll"
	indexPath     = "/data/ds/index.csv"
	outputDir     = "/data/out"
	csvHeader     = "ref,label,rotation"
)

// node is what survives an LC restart: the host's files and the store file.
type node struct{ rootfs, storePath string }

func newNode(t *testing.T) node {
	n := node{rootfs: t.TempDir(), storePath: filepath.Join(t.TempDir(), "lc.db")}
	n.writeFile(t, indexPath, csvHeader+"\n")
	require.NoError(t, os.MkdirAll(filepath.Join(n.rootfs, outputDir), 0o755))
	return n
}

func (n node) writeFile(t *testing.T, hostPath, content string) {
	full := filepath.Join(n.rootfs, hostPath)
	require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
	require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
}

func (n node) readFile(t *testing.T, hostPath string) string {
	content, err := os.ReadFile(filepath.Join(n.rootfs, hostPath))
	require.NoError(t, err)
	return string(content)
}

// appendSamples adds samples first..first+count-1 to the csv index in one write.
func (n node) appendSamples(t *testing.T, first, count int) {
	file, err := os.OpenFile(filepath.Join(n.rootfs, indexPath), os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	defer func() { require.NoError(t, file.Close()) }()
	var batch strings.Builder
	for i := first; i < first+count; i++ {
		fmt.Fprintf(&batch, "img/%d.png,%d,0\n", i, i%10)
	}
	_, err = file.WriteString(batch.String())
	require.NoError(t, err)
}

// lc is one run of the manager on a node; passes are driven by the test.
type lc struct {
	t        *testing.T
	node     node
	st       *store.Store
	reporter *managertest.Reporter
	m        *Manager
	version  uint64
	now      time.Time
	mu       sync.Mutex
}

func startLC(t *testing.T, n node, opts Options) *lc {
	st, err := store.Open(n.storePath, store.Options{})
	require.NoError(t, err)
	resolver, err := datasetindex.NewResolver(n.rootfs, []string{"/data"})
	require.NoError(t, err)
	l := &lc{t: t, node: n, st: st, reporter: &managertest.Reporter{}, version: 100,
		now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.Local)}
	opts.Resolver = resolver
	opts.Now = func() time.Time { l.mu.Lock(); defer l.mu.Unlock(); return l.now }
	l.m, err = New(st, l.reporter, opts)
	require.NoError(t, err)
	t.Cleanup(l.stop)
	return l
}

func (l *lc) stop() {
	if l.st != nil {
		require.NoError(l.t, l.st.Close())
		l.st = nil
	}
}

func (l *lc) setClock(hhmm string) {
	parsed, err := time.ParseInLocation("15:04", hhmm, time.Local)
	require.NoError(l.t, err)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = time.Date(2026, 12, 5, parsed.Hour(), parsed.Minute(), 0, 0, time.Local)
}

func (l *lc) put(kind, name string, obj any) store.Resource {
	raw, err := json.Marshal(obj)
	require.NoError(l.t, err)
	l.version++
	r := store.Resource{Key: store.ResourceKey{Kind: kind, Namespace: testNamespace, Name: name}, Version: l.version, Object: raw}
	_, err = l.st.PutResource(r)
	require.NoError(l.t, err)
	return r
}

func (l *lc) setup(job *sednav1.LifelongLearningJob) {
	l.put(DatasetKind, "mnist", sednav1.Dataset{Spec: sednav1.DatasetSpec{URL: indexPath, Format: "csv", NodeName: "edge-1"}})
	l.publish(job)
}

func (l *lc) publish(job *sednav1.LifelongLearningJob) {
	l.m.ResourceChanged(context.Background(), l.put(Kind, testJob, job))
}

// pass runs one periodic pass of the job and returns its period.
func (l *lc) pass() time.Duration {
	j, _ := l.m.jobs.Get(store.ResourceKey{Kind: Kind, Namespace: testNamespace, Name: testJob})
	require.NotNil(l.t, j)
	return j.pass(context.Background())
}

func (l *lc) post(msg managers.WorkerMessage) {
	msg.Namespace, msg.OwnerName, msg.OwnerKind = testNamespace, testJob, Kind
	require.NoError(l.t, l.m.HandleWorkerMessage(context.Background(), msg))
}

func (l *lc) stageReports() []StageReport {
	return managertest.Decoded[StageReport](l.t, l.reporter, "worker", false)
}

func (l *lc) states() []string {
	var states []string
	for _, r := range l.stageReports() {
		states = append(states, fmt.Sprintf("%s/%s#%d", r.Phase, r.Status, r.Round))
	}
	return states
}

func (l *lc) last() StageReport {
	reports := l.stageReports()
	require.NotEmpty(l.t, reports)
	return reports[len(reports)-1]
}

func newJob(trigger sednav1.Trigger) *sednav1.LifelongLearningJob {
	return &sednav1.LifelongLearningJob{
		TypeMeta:   metav1.TypeMeta{Kind: "LifelongLearningJob"},
		ObjectMeta: metav1.ObjectMeta{Name: testJob, Namespace: testNamespace},
		Spec: sednav1.LLJobSpec{
			Dataset:   sednav1.LLDataset{Name: "mnist", TrainProb: 0.5},
			TrainSpec: sednav1.LLTrainSpec{Trigger: trigger},
			OutputDir: outputDir,
		},
	}
}

func countTrigger(threshold float64) sednav1.Trigger {
	return sednav1.Trigger{Condition: sednav1.TriggerCondition{Operator: "gt", Threshold: threshold, Metric: "num_of_samples"}}
}

func trainCompleted(round int, url string) managers.WorkerMessage {
	return managers.WorkerMessage{Name: fmt.Sprintf("%s-train-%d", testJob, round), Kind: "train", Status: "completed",
		Results: []map[string]any{{"format": "pkl", "url": url}}}
}

func evalCompleted(round int, url string) managers.WorkerMessage {
	return managers.WorkerMessage{Name: fmt.Sprintf("%s-eval-%d", testJob, round), Kind: "eval", Status: "completed",
		Results: []map[string]any{{"format": "pkl", "url": url, "current_metric": map[string]any{"task0": map[string]any{"accuracy": 0.97}}}}}
}

func TestRoundFromSamplesToDeploy(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n, Options{})
	l.setup(newJob(countTrigger(3)))

	n.appendSamples(t, 0, 4) // 2 train, 2 eval: 2 > 3 does not hold
	l.pass()
	require.Empty(t, l.states(), "the train trigger must not fire on 2 samples")

	n.appendSamples(t, 4, 6) // 3 more train: 5 > 3
	l.pass()
	require.Equal(t, []string{"Train/Ready#1"}, l.states())
	ready := l.last()
	require.Equal(t, outputDir+"/data/train/1/data.csv", ready.Input.DataURL)
	require.Equal(t, outputDir+"/train/1", ready.Input.OutputDir)
	require.Empty(t, ready.Input.Models, "no index before the first training: HAS_COMPLETED_INITIAL_TRAINING=false")
	require.Equal(t, csvHeader+"\nimg/0.png,0,0\nimg/1.png,1,0\nimg/4.png,4,0\nimg/5.png,5,0\nimg/6.png,6,0\n", n.readFile(t, ready.Input.DataURL))

	l.pass() // nothing new: the round waits for the train worker
	require.Len(t, l.states(), 1)

	index := outputDir + "/train/1/index.pkl"
	n.writeFile(t, index, "kb-index-round-1")
	l.post(trainCompleted(1, index))
	require.Equal(t, []string{"Train/Ready#1", "Train/Completed#1", "Eval/Ready#1"}, l.states())
	evalReady := l.last()
	require.Equal(t, []ModelRef{{Format: "pkl", URL: index}}, evalReady.Input.Models)
	require.Equal(t, outputDir+"/eval/1", evalReady.Input.OutputDir)
	require.Equal(t, csvHeader+"\nimg/2.png,2,0\nimg/3.png,3,0\nimg/7.png,7,0\nimg/8.png,8,0\nimg/9.png,9,0\n", n.readFile(t, evalReady.Input.DataURL))

	// The eval worker publishes the index again with the tasks' metrics: that one is deployed.
	evaluated := outputDir + "/eval/1/index.pkl"
	n.writeFile(t, evaluated, "kb-index-round-1-evaluated")
	l.post(evalCompleted(1, evaluated))
	require.Equal(t, []string{"Train/Ready#1", "Train/Completed#1", "Eval/Ready#1", "Eval/Completed#1",
		"Deploy/Waiting#1", "Deploy/Ready#1", "Deploy/Completed#1", "Train/Waiting#1"}, l.states())
	require.Equal(t, "kb-index-round-1-evaluated", n.readFile(t, outputDir+"/deploy/index.pkl"))
	closing := l.last()
	require.NotNil(t, closing.RoundResult)
	require.True(t, closing.RoundResult.Deployed)
	require.Equal(t, index, closing.RoundResult.Model)

	// The next round starts from the last index: GM sets CLOUD_KB_INDEX from input.models[0].
	n.appendSamples(t, 10, 8)
	l.pass()
	require.Equal(t, "Train/Ready#2", l.states()[len(l.states())-1])
	require.Equal(t, []ModelRef{{Format: "pkl", URL: index}}, l.last().Input.Models)
}

func TestRestartMidRoundResumesWithoutNewRound(t *testing.T) {
	n := newNode(t)
	first := startLC(t, n, Options{})
	job := newJob(countTrigger(1))
	first.setup(job)
	n.appendSamples(t, 0, 4)
	first.pass()
	require.Equal(t, []string{"Train/Ready#1"}, first.states())
	first.stop()

	// New samples arrive while the LC is down; GM meanwhile created the train pod.
	n.appendSamples(t, 4, 4)
	second := startLC(t, n, Options{})
	job.Status.LearningProgress = sednav1.LearningProgress{Round: 1, Stage: sednav1.StageTrain, StageState: sednav1.StageStarting}
	second.publish(job)
	second.pass()
	second.pass()
	require.Empty(t, second.states(), "the restarted LC resumes round 1 and starts no new round")
	raw, found, err := second.st.GetState(StateNamespace, testNamespace+"/"+testJob)
	require.NoError(t, err)
	require.True(t, found)
	var rec record
	require.NoError(t, json.Unmarshal(raw, &rec))
	require.Equal(t, "Train/Starting (round 1)", rec.State.String(), "GM's Starting is taken for the resumed round")

	index := outputDir + "/train/1/index.pkl"
	n.writeFile(t, index, "idx")
	second.post(trainCompleted(1, index))
	require.Equal(t, "Eval/Ready#1", second.states()[len(second.states())-1])
	// The samples taken before and after the restart are all in the eval data: 2 + 2.
	require.Equal(t, csvHeader+"\nimg/2.png,2,0\nimg/3.png,3,0\nimg/6.png,6,0\nimg/7.png,7,0\n", n.readFile(t, second.last().Input.DataURL))
}

func TestTrainTriggerTimerWindowAndCheckPeriod(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n, Options{})
	trigger := countTrigger(1)
	trigger.Timer = &sednav1.Timer{Start: "22:00", End: "02:00"}
	trigger.CheckPeriodSeconds = 42
	l.setup(newJob(trigger))
	n.appendSamples(t, 0, 10)

	l.setClock("12:00")
	require.Equal(t, 42*time.Second, l.pass(), "the pass period is the trigger's checkPeriodSeconds")
	require.Empty(t, l.states(), "outside the window the trigger does not fire, whatever the count")
	l.setClock("01:30")
	l.pass()
	require.Equal(t, []string{"Train/Ready#1"}, l.states(), "inside a window that wraps midnight it fires")
}

func TestDeployDownloadsIndexFromKBWithToken(t *testing.T) {
	var gotAuth string
	kb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		if r.URL.Path != "/knowledgebase/file/download" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("kb-served-index"))
	}))
	defer kb.Close()
	n := newNode(t)
	l := startLC(t, n, Options{KBServer: kb.URL, KBToken: "s3cret"})
	l.setup(newJob(countTrigger(1)))
	n.appendSamples(t, 0, 4)
	l.pass()
	index := kb.URL + "/knowledgebase/file/download?files=index.pkl"
	l.post(trainCompleted(1, index))
	l.post(evalCompleted(1, index))
	require.Equal(t, "Train/Waiting#1", l.states()[len(l.states())-1])
	require.True(t, l.last().RoundResult.Deployed)
	require.Equal(t, "Bearer s3cret", gotAuth)
	require.Equal(t, "kb-served-index", n.readFile(t, outputDir+"/deploy/index.pkl"))
}

func TestDeployRefusesIndexOutsideKBRoute(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n, Options{KBServer: "http://kb.example:9020"})
	l.setup(newJob(countTrigger(1)))
	n.appendSamples(t, 0, 4)
	l.pass()
	index := "http://evil.example/knowledgebase/index.pkl"
	l.post(trainCompleted(1, index))
	l.post(evalCompleted(1, index))
	closing := l.last()
	require.Equal(t, "Train/Waiting", closing.Phase+"/"+closing.Status)
	require.False(t, closing.RoundResult.Deployed)
	require.Contains(t, closing.Message, "not below the KB's http://kb.example:9020/knowledgebase/ route")
	_, err := os.Stat(filepath.Join(n.rootfs, outputDir, DeployIndex))
	require.True(t, os.IsNotExist(err), "nothing deployed")
}

func TestTrainWithoutIndexFailsTheRound(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n, Options{})
	l.setup(newJob(countTrigger(1)))
	n.appendSamples(t, 0, 4)
	l.pass()
	l.post(managers.WorkerMessage{Name: testJob + "-train-1", Kind: "train", Status: "completed"})
	require.Equal(t, []string{"Train/Ready#1", "Train/Failed#1", "Train/Waiting#1"}, l.states())
	require.Contains(t, l.last().Message, "no KB index")
}

func (l *lc) advanceClock(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = l.now.Add(d)
}

func TestLastReportSentAgainWhenGMLags(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n, Options{ResendAfter: time.Minute})
	job := newJob(countTrigger(1))
	l.setup(job)
	n.appendSamples(t, 0, 4)
	l.pass()
	require.Equal(t, []string{"Train/Ready#1"}, l.states())

	// GM publishes a status without round 1 (it lost the report).
	job.Status.LearningProgress = sednav1.LearningProgress{Stage: sednav1.StageTrain, StageState: sednav1.StageWaiting}
	l.publish(job)
	l.pass()
	require.Len(t, l.states(), 1, "not before ResendAfter")
	l.advanceClock(2 * time.Minute)
	l.pass()
	require.Equal(t, []string{"Train/Ready#1", "Train/Ready#1"}, l.states())
	require.Equal(t, outputDir+"/data/train/1/data.csv", l.last().Input.DataURL, "the whole report is sent again")

	// Once GM shows the round, nothing more is sent.
	job.Status.LearningProgress = sednav1.LearningProgress{Round: 1, Stage: sednav1.StageTrain, StageState: sednav1.StageReady}
	l.publish(job)
	l.advanceClock(2 * time.Minute)
	l.pass()
	require.Len(t, l.states(), 2)
}

func TestKBOutageBlocksDeployUntilItAnswers(t *testing.T) {
	var mu sync.Mutex
	down := true
	kb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("index-after-outage"))
	}))
	defer kb.Close()
	n := newNode(t)
	l := startLC(t, n, Options{KBServer: kb.URL})
	l.setup(newJob(countTrigger(1)))
	n.appendSamples(t, 0, 4)
	l.pass()
	index := kb.URL + "/knowledgebase/file/download?files=index.pkl"
	l.post(trainCompleted(1, index))
	l.post(evalCompleted(1, index))
	blocked := l.last()
	require.Equal(t, "Deploy/Waiting", blocked.Phase+"/"+blocked.Status)
	require.NotNil(t, blocked.Problem)
	require.Equal(t, ReasonIndexNotReadable, blocked.Problem.Reason)
	require.Contains(t, blocked.Problem.Message, "503")

	mu.Lock()
	down = false
	mu.Unlock()
	l.pass()
	states := l.states()
	require.Equal(t, []string{"Deploy/Waiting#1", "Deploy/Ready#1", "Deploy/Completed#1", "Train/Waiting#1"}, states[len(states)-4:])
	require.Nil(t, l.last().Problem)
	require.Equal(t, "index-after-outage", n.readFile(t, outputDir+"/deploy/index.pkl"))
}
