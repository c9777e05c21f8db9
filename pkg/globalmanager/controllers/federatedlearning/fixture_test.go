package federatedlearning

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

// recordingDownstream keeps the last copies published per key and node.
type recordingDownstream struct {
	copies   map[channel.Key]map[string][]byte
	versions map[channel.Key]uint64
}

func (r *recordingDownstream) Publish(key channel.Key, version uint64, object []byte, nodes ...string) {
	objects := map[string][]byte{}
	for _, n := range nodes {
		objects[n] = object
	}
	r.PublishEach(key, version, objects)
}

func (r *recordingDownstream) PublishEach(key channel.Key, version uint64, objects map[string][]byte) {
	r.copies[key] = maps.Clone(objects)
	r.versions[key] = version
}

func (r *recordingDownstream) Unpublish(key channel.Key) { delete(r.copies, key) }

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a controller over fake clientsets whose informer caches refresh fills from the fake
// APIs, as the informers would.
type fixture struct {
	t              *testing.T
	kube           *kubefake.Clientset
	sedna          *sednafake.Clientset
	kubeInformers  kubeinformers.SharedInformerFactory
	tokenInformers kubeinformers.SharedInformerFactory
	sednaInformers sednainformers.SharedInformerFactory
	downstream     *recordingDownstream
	recorder       *record.FakeRecorder
	c              *Controller
}

func newFixture(t *testing.T, sednaObjects []k8sruntime.Object, kubeObjects ...k8sruntime.Object) *fixture {
	t.Helper()
	f := &fixture{
		t: t, kube: kubefake.NewClientset(kubeObjects...), sedna: sednafake.NewSimpleClientset(sednaObjects...),
		downstream: &recordingDownstream{copies: map[channel.Key]map[string][]byte{}, versions: map[channel.Key]uint64{}},
		recorder:   record.NewFakeRecorder(100),
	}
	f.restartGM()
	return f
}

// restartGM builds a new controller with empty caches over the same fake APIs, as a GM restart.
func (f *fixture) restartGM() {
	f.t.Helper()
	f.kubeInformers = kubeinformers.NewSharedInformerFactory(f.kube, 0)
	f.tokenInformers = runtime.NewWorkerTokenInformers(f.kube, "")
	f.sednaInformers = sednainformers.NewSharedInformerFactory(f.sedna, 0)
	ctrl, err := New(runtime.Dependencies{
		KubeClient: f.kube, SednaClient: f.sedna, KubeInformers: f.kubeInformers, SednaInformers: f.sednaInformers,
		WorkerTokenInformers: f.tokenInformers, Downstream: f.downstream, Recorder: f.recorder,
		LCServer: "http://localhost:9100",
	})
	require.NoError(f.t, err)
	f.c = ctrl.(*Controller)
	f.t.Cleanup(f.c.queue.ShutDown)
	f.c.now = func() time.Time { return now }
	f.refresh()
}

// refresh replaces the informer caches with the fake APIs' current objects.
func (f *fixture) refresh() {
	f.t.Helper()
	ctx := context.Background()
	pods, err := f.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	var objs []any
	for i := range pods.Items {
		objs = append(objs, &pods.Items[i])
	}
	require.NoError(f.t, f.kubeInformers.Core().V1().Pods().Informer().GetIndexer().Replace(objs, ""))
	services, err := f.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range services.Items {
		objs = append(objs, &services.Items[i])
	}
	require.NoError(f.t, f.kubeInformers.Core().V1().Services().Informer().GetIndexer().Replace(objs, ""))
	secrets, err := f.kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: runtime.WorkerTokenSelector.String()})
	require.NoError(f.t, err)
	objs = nil
	for i := range secrets.Items {
		objs = append(objs, &secrets.Items[i])
	}
	require.NoError(f.t, f.tokenInformers.Core().V1().Secrets().Informer().GetIndexer().Replace(objs, ""))
	jobs, err := f.sedna.SednaV1alpha1().FederatedLearningJobs("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range jobs.Items {
		objs = append(objs, &jobs.Items[i])
	}
	require.NoError(f.t, f.sednaInformers.Sedna().V1alpha1().FederatedLearningJobs().Informer().GetIndexer().Replace(objs, ""))
	models, err := f.sedna.SednaV1alpha1().Models("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range models.Items {
		objs = append(objs, &models.Items[i])
	}
	require.NoError(f.t, f.sednaInformers.Sedna().V1alpha1().Models().Informer().GetIndexer().Replace(objs, ""))
	datasets, err := f.sedna.SednaV1alpha1().Datasets("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range datasets.Items {
		objs = append(objs, &datasets.Items[i])
	}
	require.NoError(f.t, f.sednaInformers.Sedna().V1alpha1().Datasets().Informer().GetIndexer().Replace(objs, ""))
}

// sync runs one sync of job ns/fl, requires it to succeed and refreshes the caches.
func (f *fixture) sync() {
	f.t.Helper()
	f.kube.ClearActions()
	f.sedna.ClearActions()
	require.NoError(f.t, f.c.sync(context.Background(), "ns/fl"))
	f.refresh()
}

// writes are the create/delete actions on pods and services since the last sync started.
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.kube.Actions() {
		if r := a.GetResource().Resource; r != "pods" && r != "services" {
			continue
		}
		switch action := a.(type) {
		case k8stesting.CreateAction:
			if a.GetVerb() == "create" {
				out = append(out, "create "+a.GetResource().Resource+" "+action.GetObject().(metav1.Object).GetName())
			}
		case k8stesting.DeleteAction:
			out = append(out, "delete "+a.GetResource().Resource+" "+action.GetName())
		}
	}
	return out
}

func (f *fixture) job() *sednav1.FederatedLearningJob {
	f.t.Helper()
	job, err := f.sedna.SednaV1alpha1().FederatedLearningJobs("ns").Get(context.Background(), "fl", metav1.GetOptions{})
	require.NoError(f.t, err)
	return job
}

func (f *fixture) pod(name string) *corev1.Pod {
	f.t.Helper()
	pod, err := f.kube.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return pod
}

// setPhase writes a pod's phase (and container statuses) into the fake API and the caches.
func (f *fixture) setPhase(name string, phase corev1.PodPhase, statuses ...corev1.ContainerStatus) {
	f.t.Helper()
	pod := f.pod(name)
	pod.Status.Phase, pod.Status.ContainerStatuses = phase, statuses
	_, err := f.kube.CoreV1().Pods("ns").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
	require.NoError(f.t, err)
	f.refresh()
}

// updateJob writes job (a spec edit bumps the generation, as the API server would) and refreshes.
func (f *fixture) updateJob(edit func(*sednav1.FederatedLearningJob)) {
	f.t.Helper()
	job := f.job()
	edit(job)
	job.Generation++
	_, err := f.sedna.SednaV1alpha1().FederatedLearningJobs("ns").Update(context.Background(), job, metav1.UpdateOptions{})
	require.NoError(f.t, err)
	f.refresh()
}

// report hands the controller a forwarded worker report, as the hub would.
// report is a report about job fl from edge-1's LC (the node of fl-train-0).
func (f *fixture) report(content string) error { return f.reportFrom("edge-1", content) }

func (f *fixture) reportFrom(node, content string) error {
	return f.c.HandleReport(context.Background(), node, runtime.Key(Kind, "ns", "fl"), []byte(content))
}

func model(name, url string) *sednav1.Model {
	return &sednav1.Model{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: sednav1.ModelSpec{URL: url, Format: "pb"}}
}

func dataset(name, node, url string) *sednav1.Dataset {
	return &sednav1.Dataset{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: sednav1.DatasetSpec{URL: url, Format: "txt", NodeName: node}}
}

func trainingWorker(dataset, node string) sednav1.TrainingWorker {
	return sednav1.TrainingWorker{
		Dataset: sednav1.DatasetReference{Name: dataset},
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "train", Image: "trainer:v1", Env: []corev1.EnvVar{{Name: "epochs", Value: "1"}},
		}}}},
	}
}

// flJob is a job with two training workers on two nodes, and what it refers to.
func flJob() []k8sruntime.Object {
	job := &sednav1.FederatedLearningJob{
		ObjectMeta: metav1.ObjectMeta{Name: "fl", Namespace: "ns", UID: types.UID("uid-fl"), Generation: 1, ResourceVersion: "7"},
		Spec: sednav1.FLJobSpec{
			AggregationWorker: sednav1.AggregationWorker{
				Model: sednav1.ModelReference{Name: "surface-defect"},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "agg", Image: "aggregator:v1", Env: []corev1.EnvVar{{Name: "exit_round", Value: "3"}},
				}}}},
			},
			TrainingWorkers: []sednav1.TrainingWorker{trainingWorker("edge1-data", "edge-1"), trainingWorker("edge2-data", "edge-2")},
		},
	}
	return []k8sruntime.Object{
		job, model("surface-defect", "/model/fl/model.pb"),
		dataset("edge1-data", "edge-1", "/data/1/train.txt"), dataset("edge2-data", "edge-2", "/data/2/train.txt"),
	}
}

// envOf is a container's env by name: literal values, or "secret:<name>/<key>" and
// "field:<path>" for references.
func envOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom.FieldRef != nil:
			out[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
		}
	}
	return out
}
