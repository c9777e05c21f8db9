package lifelonglearning

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	sednafake "github.com/sedna-go/sedna/pkg/client/clientset/versioned/fake"
	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

type sent struct {
	nodes  []string
	object []byte
}

type recordingDownstream struct{ published map[channel.Key]sent }

func (r *recordingDownstream) Publish(key channel.Key, _ uint64, object []byte, nodes ...string) {
	r.published[key] = sent{nodes: nodes, object: object}
}
func (r *recordingDownstream) Unpublish(key channel.Key) { delete(r.published, key) }

// fixture is a controller over fake clientsets whose informer caches the test fills.
type fixture struct {
	t              *testing.T
	kube           *kubefake.Clientset
	sedna          *sednafake.Clientset
	kubeInformers  kubeinformers.SharedInformerFactory
	tokenInformers kubeinformers.SharedInformerFactory
	sednaInformers sednainformers.SharedInformerFactory
	downstream     *recordingDownstream
	secrets        *runtime.Bindings
	recorder       *record.FakeRecorder
	clock          time.Time
	c              *Controller
}

const testKB = "http://kb.sedna:9020"

func newFixture(t *testing.T, kbSecret string, sednaObjects ...k8sruntime.Object) *fixture {
	t.Helper()
	f := &fixture{
		t: t, kube: kubefake.NewClientset(), sedna: sednafake.NewSimpleClientset(sednaObjects...),
		downstream: &recordingDownstream{published: map[channel.Key]sent{}},
		secrets:    runtime.NewBindings(), recorder: record.NewFakeRecorder(100),
		clock: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	f.kubeInformers = kubeinformers.NewSharedInformerFactory(f.kube, 0)
	f.tokenInformers = runtime.NewWorkerTokenInformers(f.kube, "")
	f.sednaInformers = sednainformers.NewSharedInformerFactory(f.sedna, 0)
	ctrl, err := New(runtime.Dependencies{
		KubeClient: f.kube, SednaClient: f.sedna, KubeInformers: f.kubeInformers, SednaInformers: f.sednaInformers,
		WorkerTokenInformers: f.tokenInformers, Downstream: f.downstream, Models: runtime.NewBindings(), Secrets: f.secrets,
		Recorder: f.recorder, LCServer: "http://localhost:9100", KBServer: testKB, KBTokenSecret: kbSecret,
	})
	require.NoError(t, err)
	f.c = ctrl.(*Controller)
	t.Cleanup(f.c.queue.ShutDown)
	f.c.now = func() time.Time { return f.clock }
	f.refresh()
	return f
}

func replaceAll[T any](t *testing.T, informer interface{ Replace([]any, string) error }, items []T) {
	t.Helper()
	objs := make([]any, 0, len(items))
	for i := range items {
		objs = append(objs, &items[i])
	}
	require.NoError(t, informer.Replace(objs, ""))
}

// refresh replaces the informer caches with the fake APIs' current objects.
func (f *fixture) refresh() {
	f.t.Helper()
	ctx := context.Background()
	pods, err := f.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	replaceAll(f.t, f.kubeInformers.Core().V1().Pods().Informer().GetIndexer(), pods.Items)
	deployments, err := f.kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	replaceAll(f.t, f.kubeInformers.Apps().V1().Deployments().Informer().GetIndexer(), deployments.Items)
	secrets, err := f.kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: runtime.WorkerTokenSelector.String()})
	require.NoError(f.t, err)
	replaceAll(f.t, f.tokenInformers.Core().V1().Secrets().Informer().GetIndexer(), secrets.Items)
	jobs, err := f.sedna.SednaV1alpha1().LifelongLearningJobs("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	replaceAll(f.t, f.sednaInformers.Sedna().V1alpha1().LifelongLearningJobs().Informer().GetIndexer(), jobs.Items)
	datasets, err := f.sedna.SednaV1alpha1().Datasets("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	replaceAll(f.t, f.sednaInformers.Sedna().V1alpha1().Datasets().Informer().GetIndexer(), datasets.Items)
}

func (f *fixture) sync() {
	f.t.Helper()
	f.kube.ClearActions()
	require.NoError(f.t, f.c.sync(context.Background(), "ns/atcii"))
	f.refresh()
}

func (f *fixture) report(content any) {
	f.t.Helper()
	data, err := json.Marshal(content)
	require.NoError(f.t, err)
	require.NoError(f.t, f.c.HandleReport(context.Background(), "edge-1", runtime.Key(Kind, "ns", "atcii"), data))
}

func (f *fixture) job() *sednav1.LifelongLearningJob {
	f.t.Helper()
	job, err := f.sedna.SednaV1alpha1().LifelongLearningJobs("ns").Get(context.Background(), "atcii", metav1.GetOptions{})
	require.NoError(f.t, err)
	return job
}

func (f *fixture) pod(name string) *corev1.Pod {
	f.t.Helper()
	pod, err := f.kube.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return pod
}

func (f *fixture) noPod(name string) {
	f.t.Helper()
	_, err := f.kube.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
	require.True(f.t, apierrors.IsNotFound(err), "pod %s must not exist: %v", name, err)
}

func (f *fixture) deployment(name string) (*appsv1.Deployment, bool) {
	f.t.Helper()
	d, err := f.kube.AppsV1().Deployments("ns").Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	require.NoError(f.t, err)
	return d, true
}

func (f *fixture) setPodPhase(name string, phase corev1.PodPhase) {
	f.t.Helper()
	pod := f.pod(name)
	pod.Status.Phase = phase
	_, err := f.kube.CoreV1().Pods("ns").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
	require.NoError(f.t, err)
	f.refresh()
}

func (f *fixture) published() (*sednav1.LifelongLearningJob, []string) {
	f.t.Helper()
	s, ok := f.downstream.published[runtime.Key(Kind, "ns", "atcii")]
	require.True(f.t, ok, "the job was published")
	var job sednav1.LifelongLearningJob
	require.NoError(f.t, json.Unmarshal(s.object, &job))
	return &job, s.nodes
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

func dataset() *sednav1.Dataset {
	return &sednav1.Dataset{
		ObjectMeta: metav1.ObjectMeta{Name: "atcii-ds", Namespace: "ns"},
		Spec:       sednav1.DatasetSpec{URL: "/data/trainData.csv", Format: "csv", NodeName: "edge-1"},
	}
}

func template(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: "edge-1", Containers: []corev1.Container{{
		Name: name, Image: "atcii:v1", Env: []corev1.EnvVar{{Name: "metric_name", Value: "mlogloss"}},
	}}}}
}

func atcii() *sednav1.LifelongLearningJob {
	return &sednav1.LifelongLearningJob{
		ObjectMeta: metav1.ObjectMeta{Name: "atcii", Namespace: "ns", UID: types.UID("uid-1"), Generation: 1, ResourceVersion: "5"},
		Spec: sednav1.LLJobSpec{
			Dataset: sednav1.LLDataset{Name: "atcii-ds", TrainProb: 0.8},
			TrainSpec: sednav1.LLTrainSpec{Template: template("train-worker"), Trigger: sednav1.Trigger{
				Condition: sednav1.TriggerCondition{Operator: ">", Threshold: 500, Metric: "num_of_samples"}}},
			EvalSpec:   sednav1.LLEvalSpec{Template: template("eval-worker")},
			DeploySpec: sednav1.LLDeploySpec{Template: template("infer-worker")},
			OutputDir:  "/output",
		},
	}
}

// kbIndex is a KB download link as upstream's KB client makes it.
const kbIndex = testKB + "/knowledgebase/file/download?files=index.pkl&name=index.pkl"

func trainReady(round int32, models ...map[string]any) map[string]any {
	input := map[string]any{
		"dataURL":   "/output/data/train/" + itoa(round) + "/data.csv",
		"outputDir": "/output/train/" + itoa(round),
	}
	if len(models) > 0 {
		input["models"] = models
	}
	return map[string]any{"phase": "Train", "status": "Ready", "round": round, "input": input}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// trainOutput is what upstream's train worker reports, relayed by the LC as the stage output.
func trainOutput() map[string]any {
	return map[string]any{"models": []map[string]any{{
		"format": "pkl", "url": kbIndex, "classes": []string{"cold", "comfortable", "hot"},
		"current_metric": map[string]map[string]float64{
			"task-0": {"precision_score": 0.91, "recall": 0.5},
			"task-1": {"precision_score": 0.84},
		},
		"number_of_labeled_unseen_sample": 120, "number_of_unseen_sample": 30,
	}}}
}

func runtimeSecretKey(name string) channel.Key { return runtime.Key(runtime.SecretKind, "ns", name) }
