package incrementallearning

import (
	"context"
	"encoding/json"
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
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/model"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

const (
	testNamespace = "default"
	testJob       = "helmet-IL"
	testPeriod    = 10 * time.Millisecond
	waitFor       = 10 * time.Second
	indexPath     = "/data/ds/index.txt"
	outputDir     = "/data/out"
)

// node is what survives an LC restart: the host's files and the store file.
type node struct {
	rootfs    string
	storePath string
}

func newNode(t *testing.T) node {
	t.Helper()
	n := node{rootfs: t.TempDir(), storePath: filepath.Join(t.TempDir(), "lc.db")}
	n.writeFile(t, "/data/models/initial/model.pb", "initial")
	n.writeFile(t, "/data/models/deploy/model.pb", "deployed-0")
	n.writeFile(t, indexPath, "")
	return n
}

func (n node) writeFile(t *testing.T, hostPath, content string) {
	t.Helper()
	full := filepath.Join(n.rootfs, hostPath)
	require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
	require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
}

func (n node) readFile(t *testing.T, hostPath string) string {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(n.rootfs, hostPath))
	require.NoError(t, err)
	return string(content)
}

// appendSamples adds count sample lines to the dataset index.
func (n node) appendSamples(t *testing.T, first, count int) {
	t.Helper()
	file, err := os.OpenFile(filepath.Join(n.rootfs, indexPath), os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	defer func() { require.NoError(t, file.Close()) }()
	// One write: the batch arrives at once, so a running LC never splits half of it (the tests'
	// expected train/eval splits are per batch).
	var batch strings.Builder
	for i := first; i < first+count; i++ {
		batch.WriteString("images/" + strings.Repeat("0", 3) + itoa(i) + ".jpg 1\n")
	}
	_, err = file.WriteString(batch.String())
	require.NoError(t, err)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// lc is one run of the manager on a node.
type lc struct {
	t        testing.TB
	node     node
	st       *store.Store
	reporter *managertest.Reporter
	models   *model.Manager
	m        *Manager
	version  uint64

	passMu sync.Mutex
	passes int

	cancel  context.CancelFunc
	stopped chan struct{}
}

func startLC(t testing.TB, n node) *lc {
	t.Helper()
	st, err := store.Open(n.storePath, store.Options{})
	require.NoError(t, err)
	resolver, err := datasetindex.NewResolver(n.rootfs, []string{"/data"})
	require.NoError(t, err)
	models, err := model.New(st, model.Options{Rootfs: n.rootfs})
	require.NoError(t, err)
	reporter := &managertest.Reporter{}
	m, err := New(st, reporter, models, Options{Resolver: resolver, Rootfs: n.rootfs, WriteRoots: []string{"/data"}, Period: testPeriod})
	require.NoError(t, err)
	l := &lc{t: t, node: n, st: st, reporter: reporter, models: models, m: m, version: 100}
	m.jobs.AfterPass = func(store.ResourceKey) {
		l.passMu.Lock()
		defer l.passMu.Unlock()
		l.passes++
	}
	t.Cleanup(l.stop)
	return l
}

func (l *lc) run() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.stopped = cancel, make(chan struct{})
	go func() { defer close(l.stopped); l.m.Run(ctx) }()
}

// stop ends Run and closes the store, as an LC process exit would.
func (l *lc) stop() {
	if l.cancel != nil {
		l.cancel()
		<-l.stopped
		l.cancel = nil
	}
	if l.st != nil {
		require.NoError(l.t, l.st.Close())
		l.st = nil
	}
}

func (l *lc) put(kind, name string, obj any) store.Resource {
	l.t.Helper()
	raw, err := json.Marshal(obj)
	require.NoError(l.t, err)
	l.version++
	r := store.Resource{Key: store.ResourceKey{Kind: kind, Namespace: testNamespace, Name: name}, Version: l.version, Object: raw}
	_, err = l.st.PutResource(r)
	require.NoError(l.t, err)
	return r
}

// setup stores the dataset, the models and the job, and tells the managers, as the GM client does.
func (l *lc) setup(job *sednav1.IncrementalLearningJob) {
	l.put(DatasetKind, "helmet", sednav1.Dataset{Spec: sednav1.DatasetSpec{URL: indexPath, Format: "txt", NodeName: "edge-1"}})
	for name, url := range map[string]string{"initial": "/data/models/initial/model.pb", "deploy": "/data/models/deploy/model.pb"} {
		r := l.put(model.Kind, name, sednav1.Model{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace}, Spec: sednav1.ModelSpec{URL: url, Format: "pb"}})
		l.models.ResourceChanged(context.Background(), r)
	}
	l.publish(job)
}

// publish stores a new version of the job (spec and status) and hands it to the manager.
func (l *lc) publish(job *sednav1.IncrementalLearningJob) {
	r := l.put(Kind, testJob, job)
	l.m.ResourceChanged(context.Background(), r)
}

// replay hands every stored resource to the managers, as the LC does at start.
func (l *lc) replay() {
	l.t.Helper()
	dispatcher, err := managers.NewDispatcher(l.models, l.m)
	require.NoError(l.t, err)
	require.NoError(l.t, dispatcher.Replay(context.Background(), l.st))
}

func (l *lc) passCount() int {
	l.passMu.Lock()
	defer l.passMu.Unlock()
	return l.passes
}

// waitPasses waits until n more passes ran.
func (l *lc) waitPasses(n int) {
	l.t.Helper()
	start := l.passCount()
	require.Eventually(l.t, func() bool { return l.passCount() >= start+n }, waitFor, time.Millisecond)
}

func (l *lc) post(msg managers.WorkerMessage) error {
	msg.Namespace, msg.OwnerName, msg.OwnerKind = testNamespace, testJob, Kind
	if msg.Name == "" {
		msg.Name = msg.Kind + "-worker-abcde"
	}
	return l.m.HandleWorkerMessage(context.Background(), msg)
}

// stageReports returns the LC's own stage reports (not the forwarded worker reports), decoded.
func (l *lc) stageReports() []StageReport {
	return managertest.Decoded[StageReport](l.t, l.reporter, "worker", false)
}

func (l *lc) forwardedReports() []ForwardedReport {
	return managertest.Decoded[ForwardedReport](l.t, l.reporter, "worker", true)
}

// states lists the stage reports as "Phase/Status#round".
func (l *lc) states() []string {
	var states []string
	for _, report := range l.stageReports() {
		states = append(states, report.Phase+"/"+report.Status+"#"+itoa(int(report.Round)))
	}
	return states
}

func (l *lc) waitForState(want string) {
	l.t.Helper()
	require.Eventually(l.t, func() bool {
		states := l.states()
		return len(states) > 0 && states[len(states)-1] == want
	}, waitFor, time.Millisecond, "want last state %s", want)
}

func (l *lc) savedRecord() record {
	l.t.Helper()
	raw, found, err := l.st.GetState(StateNamespace, testNamespace+"/"+testJob)
	require.NoError(l.t, err)
	require.True(l.t, found)
	var rec record
	require.NoError(l.t, json.Unmarshal(raw, &rec))
	return rec
}

func newJob(hotUpdate bool) *sednav1.IncrementalLearningJob {
	return &sednav1.IncrementalLearningJob{
		TypeMeta:   metav1.TypeMeta{Kind: "IncrementalLearningJob"},
		ObjectMeta: metav1.ObjectMeta{Name: testJob, Namespace: testNamespace},
		Spec: sednav1.ILJobSpec{
			Dataset:      sednav1.ILDataset{Name: "helmet", TrainProb: 0.8},
			InitialModel: sednav1.ModelReference{Name: "initial"},
			TrainSpec: sednav1.TrainSpec{Trigger: sednav1.Trigger{
				Condition: sednav1.TriggerCondition{Operator: "gt", Threshold: 3, Metric: "num_of_samples"},
			}},
			DeploySpec: sednav1.DeploySpec{
				Model: sednav1.DeployModel{Name: "deploy", HotUpdateEnabled: hotUpdate, PollPeriodSeconds: 1},
				Trigger: sednav1.Trigger{
					Condition: sednav1.TriggerCondition{Operator: "gt", Threshold: 0.01, Metric: "precision_delta"},
				},
			},
			OutputDir: outputDir,
		},
	}
}

func trainCompletedMessage(url string) managers.WorkerMessage {
	return managers.WorkerMessage{Kind: "train", Status: "completed", Results: []map[string]any{{"format": "pb", "url": url}}}
}

func evalCompletedMessage(newPrecision, oldPrecision float64) managers.WorkerMessage {
	return managers.WorkerMessage{Kind: "eval", Status: "completed", Results: []map[string]any{
		{"format": "pb", "url": "/data/out/train/1/model.pb", "metrics": map[string]any{"precision": []any{newPrecision}}},
		{"format": "pb", "url": "/data/models/deploy/model.pb", "metrics": map[string]any{"precision": []any{oldPrecision}}},
	}}
}

const testPeriodPoll = time.Millisecond

func (l *lc) trySavedRecord() (record, bool) {
	raw, found, err := l.st.GetState(StateNamespace, testNamespace+"/"+testJob)
	if err != nil || !found {
		return record{}, false
	}
	var rec record
	if json.Unmarshal(raw, &rec) != nil {
		return record{}, false
	}
	return rec, true
}

func (l *lc) jobKey() store.ResourceKey {
	return store.ResourceKey{Kind: Kind, Namespace: testNamespace, Name: testJob}
}

func (l *lc) savedPools() samplePools {
	l.t.Helper()
	raw, found, err := l.st.GetBlob(PoolNamespace, testNamespace+"/"+testJob)
	require.NoError(l.t, err)
	require.True(l.t, found)
	var pools samplePools
	require.NoError(l.t, json.Unmarshal(raw, &pools))
	return pools
}
