package jointinference

import (
	"context"
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

type recordingDownstream struct {
	nodes    map[channel.Key][]string
	objects  map[channel.Key][]byte
	versions map[channel.Key]uint64
}

func (r *recordingDownstream) Publish(key channel.Key, version uint64, object []byte, nodes ...string) {
	r.nodes[key] = nodes
	if r.objects == nil {
		r.objects, r.versions = map[channel.Key][]byte{}, map[channel.Key]uint64{}
	}
	r.objects[key], r.versions[key] = object, version
}
func (r *recordingDownstream) Unpublish(key channel.Key) { delete(r.nodes, key) }

// fixture is a controller over fake clientsets whose informer caches the test fills: refresh
// copies the fake API's children into the caches, as the informers would.
type fixture struct {
	t              *testing.T
	kube           *kubefake.Clientset
	sedna          *sednafake.Clientset
	kubeInformers  kubeinformers.SharedInformerFactory
	tokenInformers kubeinformers.SharedInformerFactory
	sednaInformers sednainformers.SharedInformerFactory
	downstream     *recordingDownstream
	models         *runtime.Bindings
	recorder       *record.FakeRecorder
	c              *Controller
}

func newFixture(t *testing.T, lcServer string, sednaObjects []k8sruntime.Object, kubeObjects ...k8sruntime.Object) *fixture {
	t.Helper()
	f := &fixture{
		t: t, kube: kubefake.NewClientset(kubeObjects...), sedna: sednafake.NewSimpleClientset(sednaObjects...),
		downstream: &recordingDownstream{nodes: map[channel.Key][]string{}}, models: runtime.NewBindings(),
		recorder: record.NewFakeRecorder(100),
	}
	f.kubeInformers = kubeinformers.NewSharedInformerFactory(f.kube, 0)
	f.tokenInformers = runtime.NewWorkerTokenInformers(f.kube, "")
	f.sednaInformers = sednainformers.NewSharedInformerFactory(f.sedna, 0)
	ctrl, err := New(runtime.Dependencies{
		KubeClient: f.kube, SednaClient: f.sedna, KubeInformers: f.kubeInformers, SednaInformers: f.sednaInformers,
		WorkerTokenInformers: f.tokenInformers,
		Downstream:           f.downstream, Models: f.models, Recorder: f.recorder, LCServer: lcServer,
	})
	require.NoError(t, err)
	f.c = ctrl.(*Controller)
	t.Cleanup(f.c.queue.ShutDown)
	f.c.now = func() metav1.Time { return metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }
	for _, obj := range sednaObjects {
		switch o := obj.(type) {
		case *sednav1.JointInferenceService:
			require.NoError(t, f.sednaInformers.Sedna().V1alpha1().JointInferenceServices().Informer().GetIndexer().Add(o))
		case *sednav1.Model:
			require.NoError(t, f.sednaInformers.Sedna().V1alpha1().Models().Informer().GetIndexer().Add(o))
		}
	}
	f.refresh()
	return f
}

// refresh replaces the informer caches of the children and of the services with the fake API's
// current objects.
func (f *fixture) refresh() {
	f.t.Helper()
	ctx := context.Background()
	deployments, err := f.kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	var objs []any
	for i := range deployments.Items {
		objs = append(objs, &deployments.Items[i])
	}
	require.NoError(f.t, f.kubeInformers.Apps().V1().Deployments().Informer().GetIndexer().Replace(objs, ""))
	services, err := f.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range services.Items {
		objs = append(objs, &services.Items[i])
	}
	require.NoError(f.t, f.kubeInformers.Core().V1().Services().Informer().GetIndexer().Replace(objs, ""))
	hpas, err := f.kube.AutoscalingV2().HorizontalPodAutoscalers("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range hpas.Items {
		objs = append(objs, &hpas.Items[i])
	}
	require.NoError(f.t, f.kubeInformers.Autoscaling().V2().HorizontalPodAutoscalers().Informer().GetIndexer().Replace(objs, ""))
	pods, err := f.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range pods.Items {
		objs = append(objs, &pods.Items[i])
	}
	require.NoError(f.t, f.kubeInformers.Core().V1().Pods().Informer().GetIndexer().Replace(objs, ""))
	secrets, err := f.kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: runtime.WorkerTokenSelector.String()})
	require.NoError(f.t, err)
	objs = nil
	for i := range secrets.Items {
		objs = append(objs, &secrets.Items[i])
	}
	require.NoError(f.t, f.tokenInformers.Core().V1().Secrets().Informer().GetIndexer().Replace(objs, ""))
	jis, err := f.sedna.SednaV1alpha1().JointInferenceServices("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	objs = nil
	for i := range jis.Items {
		objs = append(objs, &jis.Items[i])
	}
	require.NoError(f.t, f.sednaInformers.Sedna().V1alpha1().JointInferenceServices().Informer().GetIndexer().Replace(objs, ""))
}

// syncAndRefresh runs one sync, requires it to succeed and refreshes the caches.
func (f *fixture) syncAndRefresh(key string) {
	f.t.Helper()
	f.kube.ClearActions()
	f.sedna.ClearActions()
	require.NoError(f.t, f.c.sync(context.Background(), key))
	f.refresh()
}

// writes are the create/update/delete actions on the kube API since the last ClearActions,
// except on the worker-token Secret, which TestWorkersGetTheServicesTokenAndTheLCLearnsItsWorkers
// checks.
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.kube.Actions() {
		if a.GetResource().Resource == "secrets" {
			continue
		}
		switch a.GetVerb() {
		case "create", "update", "delete", "patch":
			name := ""
			switch action := a.(type) {
			case k8stesting.CreateAction: // update actions have the same method set and match here too
				name = action.GetObject().(metav1.Object).GetName()
			case k8stesting.DeleteAction:
				name = action.GetName()
			}
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource+" "+name)
		}
	}
	return out
}

func (f *fixture) deployment(name string) *appsv1.Deployment {
	f.t.Helper()
	d, err := f.kube.AppsV1().Deployments("ns").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return d
}

func (f *fixture) service(name string) *sednav1.JointInferenceService {
	f.t.Helper()
	ji, err := f.sedna.SednaV1alpha1().JointInferenceServices("ns").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return ji
}

// setDeploymentStatus writes a Deployment status into the fake API and the cache.
func (f *fixture) setDeploymentStatus(name string, status appsv1.DeploymentStatus) {
	f.t.Helper()
	d := f.deployment(name)
	d.Status = status
	_, err := f.kube.AppsV1().Deployments("ns").UpdateStatus(context.Background(), d, metav1.UpdateOptions{})
	require.NoError(f.t, err)
	f.refresh()
}

func hostModel(name, url string) *sednav1.Model {
	return &sednav1.Model{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: sednav1.ModelSpec{URL: url, Format: "pb"}}
}

// helmet is a joint inference service with user env in both workers.
func helmet() *sednav1.JointInferenceService {
	return &sednav1.JointInferenceService{
		ObjectMeta: metav1.ObjectMeta{Name: "helmet", Namespace: "ns", UID: types.UID("uid-1"), Generation: 1, ResourceVersion: "5"},
		Spec: sednav1.JointInferenceServiceSpec{
			EdgeWorker: sednav1.EdgeWorker{
				Model: sednav1.ModelReference{Name: "little"},
				HardExampleMining: sednav1.HardExampleMining{Name: "IBT", Parameters: []sednav1.ParaSpec{
					{Key: "threshold_img", Value: "0.9"}, {Key: "threshold_box", Value: "0.8"},
				}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: "edge-1", Containers: []corev1.Container{{
					Name: "little", Image: "little:v1", Env: []corev1.EnvVar{{Name: "input_shape", Value: "416,736"}},
				}}}},
			},
			CloudWorker: sednav1.CloudWorker{
				Model: sednav1.ModelReference{Name: "big"},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "big", Image: "big:v1", Env: []corev1.EnvVar{{Name: "input_shape", Value: "544,544"}},
				}}}},
			},
		},
	}
}
