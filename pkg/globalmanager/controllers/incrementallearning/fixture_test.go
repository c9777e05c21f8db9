package incrementallearning

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	sednafake "github.com/sedna-go/sedna/pkg/client/clientset/versioned/fake"
	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// sent is what the controller last published for a key.
type sent struct {
	nodes   []string
	object  []byte
	version uint64
}

type recordingDownstream struct{ published map[channel.Key]sent }

func (r *recordingDownstream) Publish(key channel.Key, version uint64, object []byte, nodes ...string) {
	r.published[key] = sent{nodes: nodes, object: object, version: version}
}
func (r *recordingDownstream) Unpublish(key channel.Key) { delete(r.published, key) }

// fakeChannel is the channel state of the nodes: a node not disconnected by a test is connected
// since the zero time.
type fakeChannel struct {
	mu       sync.Mutex
	since    map[string]time.Time
	down     map[string]bool
	onChange []func(string)
}

func (c *fakeChannel) ConnectedSince(node string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down[node] {
		return time.Time{}, false
	}
	return c.since[node], true
}

func (c *fakeChannel) OnChange(fn func(string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onChange = append(c.onChange, fn)
}

func (c *fakeChannel) set(node string, connected bool, at time.Time) {
	c.mu.Lock()
	if c.down == nil {
		c.down = map[string]bool{}
	}
	c.down[node] = !connected
	if connected {
		c.since[node] = at
	}
	callbacks := append([]func(string){}, c.onChange...)
	c.mu.Unlock()
	for _, fn := range callbacks {
		fn(node)
	}
}

// fixture is a controller over fake clientsets whose informer caches the test fills: refresh
// copies the fake API's objects into the caches, as the informers would.
type fixture struct {
	t              *testing.T
	kube           *kubefake.Clientset
	sedna          *sednafake.Clientset
	kubeInformers  kubeinformers.SharedInformerFactory
	tokenInformers kubeinformers.SharedInformerFactory
	sednaInformers sednainformers.SharedInformerFactory
	downstream     *recordingDownstream
	models         *runtime.Bindings
	secrets        *runtime.Bindings
	recorder       *record.FakeRecorder
	channel        *fakeChannel
	clock          time.Time
	c              *Controller
}

var testStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newFixture(t *testing.T, sednaObjects []k8sruntime.Object, kubeObjects ...k8sruntime.Object) *fixture {
	t.Helper()
	f := &fixture{
		t: t, kube: kubefake.NewClientset(kubeObjects...), sedna: sednafake.NewSimpleClientset(sednaObjects...),
		downstream: &recordingDownstream{published: map[channel.Key]sent{}},
		models:     runtime.NewBindings(), secrets: runtime.NewBindings(), recorder: record.NewFakeRecorder(100), clock: testStart,
		channel: &fakeChannel{since: map[string]time.Time{}},
	}
	f.kubeInformers = kubeinformers.NewSharedInformerFactory(f.kube, 0)
	f.tokenInformers = runtime.NewWorkerTokenInformers(f.kube, "")
	f.sednaInformers = sednainformers.NewSharedInformerFactory(f.sedna, 0)
	ctrl, err := New(runtime.Dependencies{
		KubeClient: f.kube, SednaClient: f.sedna, KubeInformers: f.kubeInformers, SednaInformers: f.sednaInformers,
		WorkerTokenInformers: f.tokenInformers, NodeChannel: f.channel,
		Downstream: f.downstream, Models: f.models, Secrets: f.secrets, Recorder: f.recorder, LCServer: "http://localhost:9100",
	})
	require.NoError(t, err)
	f.c = ctrl.(*Controller)
	t.Cleanup(f.c.queue.ShutDown)
	f.c.now = func() time.Time { return f.clock }
	f.refresh()
	return f
}

// refresh replaces the informer caches with the fake APIs' current objects.
func (f *fixture) refresh() {
	f.t.Helper()
	ctx := context.Background()
	replace := func(informer interface{ Replace([]any, string) error }, objs []any) {
		require.NoError(f.t, informer.Replace(objs, ""))
	}
	pods, err := f.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	var objs []any
	for i := range pods.Items {
		objs = append(objs, &pods.Items[i])
	}
	replace(f.kubeInformers.Core().V1().Pods().Informer().GetIndexer(), objs)
	deployments, err := f.kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range deployments.Items {
		objs = append(objs, &deployments.Items[i])
	}
	replace(f.kubeInformers.Apps().V1().Deployments().Informer().GetIndexer(), objs)
	secrets, err := f.kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: runtime.WorkerTokenSelector.String()})
	require.NoError(f.t, err)
	objs = nil
	for i := range secrets.Items {
		objs = append(objs, &secrets.Items[i])
	}
	replace(f.tokenInformers.Core().V1().Secrets().Informer().GetIndexer(), objs)
	jobs, err := f.sedna.SednaV1alpha1().IncrementalLearningJobs("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range jobs.Items {
		objs = append(objs, &jobs.Items[i])
	}
	replace(f.sednaInformers.Sedna().V1alpha1().IncrementalLearningJobs().Informer().GetIndexer(), objs)
	datasets, err := f.sedna.SednaV1alpha1().Datasets("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range datasets.Items {
		objs = append(objs, &datasets.Items[i])
	}
	replace(f.sednaInformers.Sedna().V1alpha1().Datasets().Informer().GetIndexer(), objs)
	models, err := f.sedna.SednaV1alpha1().Models("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range models.Items {
		objs = append(objs, &models.Items[i])
	}
	replace(f.sednaInformers.Sedna().V1alpha1().Models().Informer().GetIndexer(), objs)
}

// sync runs one sync of ns/helmet (or key), requires it to succeed and refreshes the caches.
func (f *fixture) sync(key ...string) {
	f.t.Helper()
	k := "ns/helmet"
	if len(key) > 0 {
		k = key[0]
	}
	f.kube.ClearActions()
	f.sedna.ClearActions()
	require.NoError(f.t, f.c.sync(context.Background(), k))
	f.refresh()
}

// report hands the controller an LC report about ns/helmet.
func (f *fixture) report(content any) {
	f.t.Helper()
	data, err := json.Marshal(content)
	require.NoError(f.t, err)
	require.NoError(f.t, f.c.HandleReport(context.Background(), "edge-1", runtime.Key(Kind, "ns", "helmet"), data))
}

// podWrites are the pod create/delete actions since the last sync.
func (f *fixture) podWrites() []string {
	var out []string
	for _, a := range f.kube.Actions() {
		if a.GetResource().Resource != "pods" {
			continue
		}
		switch action := a.(type) {
		case k8stesting.CreateAction:
			out = append(out, "create "+action.GetObject().(metav1.Object).GetName())
		case k8stesting.DeleteAction:
			out = append(out, "delete "+action.GetName())
		}
	}
	return out
}

func (f *fixture) job() *sednav1.IncrementalLearningJob {
	f.t.Helper()
	job, err := f.sedna.SednaV1alpha1().IncrementalLearningJobs("ns").Get(context.Background(), "helmet", metav1.GetOptions{})
	require.NoError(f.t, err)
	return job
}

func (f *fixture) pod(name string) *corev1.Pod {
	f.t.Helper()
	pod, err := f.kube.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return pod
}

func (f *fixture) deployment(name string) *appsv1.Deployment {
	f.t.Helper()
	d, err := f.kube.AppsV1().Deployments("ns").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return d
}

// setPodStatus writes a pod status into the fake API and the cache.
func (f *fixture) setPodStatus(name string, status corev1.PodStatus) {
	f.t.Helper()
	pod := f.pod(name)
	pod.Status = status
	_, err := f.kube.CoreV1().Pods("ns").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
	require.NoError(f.t, err)
	f.refresh()
}

// failPod marks a pod Failed, its container having exited 1 at the fixture's clock.
func (f *fixture) failPod(name string) {
	f.t.Helper()
	f.setPodStatus(name, corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "train", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", FinishedAt: metav1.NewTime(f.clock),
		}},
	}}})
}

// published decodes the job as last sent to the LC, with the nodes it went to.
func (f *fixture) published() (*sednav1.IncrementalLearningJob, []string) {
	f.t.Helper()
	s, ok := f.downstream.published[runtime.Key(Kind, "ns", "helmet")]
	require.True(f.t, ok, "the job was published")
	var job sednav1.IncrementalLearningJob
	require.NoError(f.t, json.Unmarshal(s.object, &job))
	return &job, s.nodes
}

// events drains the recorded events.
func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
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
		ObjectMeta: metav1.ObjectMeta{Name: "helmet-ds", Namespace: "ns"},
		Spec:       sednav1.DatasetSpec{URL: "/data/helmet/train_data/data.txt", Format: "txt", NodeName: "edge-1"},
	}
}

func model(name, url string) *sednav1.Model {
	return &sednav1.Model{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: sednav1.ModelSpec{URL: url, Format: "pb"}}
}

func container(name string) corev1.Container {
	return corev1.Container{Name: name, Image: "helmet-" + name + ":v1", Env: []corev1.EnvVar{{Name: "input_shape", Value: "352,640"}}}
}

func helmet() *sednav1.IncrementalLearningJob {
	trigger := sednav1.Trigger{Condition: sednav1.TriggerCondition{Operator: "gt", Threshold: 500, Metric: "num_of_samples"}}
	return &sednav1.IncrementalLearningJob{
		ObjectMeta: metav1.ObjectMeta{Name: "helmet", Namespace: "ns", UID: types.UID("uid-1"), Generation: 1, ResourceVersion: "5"},
		Spec: sednav1.ILJobSpec{
			Dataset:      sednav1.ILDataset{Name: "helmet-ds", TrainProb: 0.8},
			InitialModel: sednav1.ModelReference{Name: "initial-model"},
			TrainSpec: sednav1.TrainSpec{Trigger: trigger, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				NodeName: "edge-1", Containers: []corev1.Container{container("train")},
			}}},
			EvalSpec: sednav1.EvalSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				NodeName: "edge-1", Containers: []corev1.Container{container("eval")},
			}}},
			DeploySpec: sednav1.DeploySpec{
				Model:             sednav1.DeployModel{Name: "deploy-model"},
				Trigger:           sednav1.Trigger{Condition: sednav1.TriggerCondition{Operator: "gt", Threshold: 0.1, Metric: "precision_delta"}},
				HardExampleMining: sednav1.HardExampleMining{Name: "IBT", Parameters: []sednav1.ParaSpec{{Key: "threshold_img", Value: "0.9"}}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					NodeName: "edge-1", Containers: []corev1.Container{container("infer")},
				}},
			},
			OutputDir: "/output",
		},
	}
}

func objects(job *sednav1.IncrementalLearningJob) []k8sruntime.Object {
	return []k8sruntime.Object{job, dataset(), model("initial-model", "/models/base/model.pb"), model("deploy-model", "/models/deploy/model.pb")}
}

// trainReady is the LC's report that round's train trigger fired.
func trainReady(round int32) map[string]any {
	return map[string]any{
		"phase": "Train", "status": "Ready", "round": round, "output": nil,
		"input": map[string]any{
			"models":    []map[string]any{{"format": "pb", "url": "/models/base/model.pb"}},
			"dataURL":   "/output/data/train/1/data.txt",
			"outputDir": "/output/train/1",
		},
	}
}

func runtimeKey(name string) channel.Key { return runtime.Key(Kind, "ns", name) }

// reportTo hands the controller an LC report about ns/name.
func (f *fixture) reportTo(name string, content any) {
	f.t.Helper()
	data, err := json.Marshal(content)
	require.NoError(f.t, err)
	require.NoError(f.t, f.c.HandleReport(context.Background(), "edge-node", runtimeKey(name), data))
}
