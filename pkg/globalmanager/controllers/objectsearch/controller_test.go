package objectsearch

import (
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workload"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workload/workloadtest"
)

func container(name, image string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: image}}}
}

func search() *sednav1.ObjectSearchService {
	s := &sednav1.ObjectSearchService{
		ObjectMeta: metav1.ObjectMeta{Name: "pedestrian-search", Namespace: "ns", UID: types.UID("uid-os"), Generation: 1, ResourceVersion: "3"},
		Spec: sednav1.ObjectSearchServiceSpec{
			UserWorker: sednav1.UserWorker{Template: corev1.PodTemplateSpec{Spec: container("userworker", "user:v1")}},
			TrackingWorkers: []sednav1.TrackingWorker{
				{Template: corev1.PodTemplateSpec{Spec: container("tracking0", "track:v1")}},
				{Template: corev1.PodTemplateSpec{Spec: container("tracking1", "track:v1")}},
			},
		},
	}
	s.Spec.ReidWorkers.Replicas = ptr.To[int32](5)
	s.Spec.ReidWorkers.Template = corev1.PodTemplateSpec{Spec: container("reid", "reid:v1")}
	return s
}

func TestChildrenNamesPortsAndEnv(t *testing.T) {
	f := workloadtest.New(t, Kind, "", search())
	f.Sync("ns/pedestrian-search")
	require.ElementsMatch(t, []string{
		"create deployments pedestrian-search-deployment-reidworker", "create services pedestrian-search-reidworker",
		"create deployments pedestrian-search-deployment-userworker", "create services pedestrian-search-userworker",
		"create pods pedestrian-search-trackingworker-0", "create pods pedestrian-search-trackingworker-1",
	}, f.Writes())

	deployment := func(name string) *appsv1.Deployment {
		d, err := f.Kube.AppsV1().Deployments("ns").Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		return d
	}
	reid := deployment("pedestrian-search-deployment-reidworker")
	require.Equal(t, int32(5), *reid.Spec.Replicas)
	require.Empty(t, reid.Spec.Template.Spec.Containers[0].Env, "upstream gives the reid workers no env")
	user := deployment("pedestrian-search-deployment-userworker")
	require.Equal(t, int32(1), *user.Spec.Replicas)
	userEnv := workloadtest.Env(user.Spec.Template.Spec.Containers[0])
	require.Len(t, userEnv, 4)
	require.Equal(t, []string{"NAMESPACE=ns", "SERVICE_NAME=pedestrian-search"}, userEnv[:2])
	require.Regexp(t, `^WORKER_NAME=userworker-[0-9a-f]{5}$`, userEnv[2])
	require.Equal(t, "SEDNA_WORKER_TOKEN=<secret pedestrian-search-objectsearchservice-worker-token/token>", userEnv[3])

	for _, name := range []string{"pedestrian-search-trackingworker-0", "pedestrian-search-trackingworker-1"} {
		require.Equal(t, []string{
			"NAMESPACE=ns", "SERVICE_NAME=pedestrian-search", "WORKER_NAME=<metadata.name>",
			"USERWORKER_URL=pedestrian-search-userworker.ns:9379", "EDGEMESH_URL=pedestrian-search-reidworker.ns:9378",
			"SEDNA_WORKER_TOKEN=<secret pedestrian-search-objectsearchservice-worker-token/token>",
		}, workloadtest.Env(f.Pod("ns", name).Spec.Containers[0]))
	}
	for name, port := range map[string]int32{"pedestrian-search-reidworker": 9378, "pedestrian-search-userworker": 9379} {
		svc, err := f.Kube.CoreV1().Services("ns").Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, port, svc.Spec.Ports[0].Port, name)
	}
	f.Sync("ns/pedestrian-search")
	require.Empty(t, f.Writes())
}

func TestReadinessPerWorkerGroup(t *testing.T) {
	f := workloadtest.New(t, Kind, "", search())
	f.Sync("ns/pedestrian-search")
	for _, name := range []string{"pedestrian-search-deployment-reidworker", "pedestrian-search-deployment-userworker"} {
		d, err := f.Kube.AppsV1().Deployments("ns").Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		d.Status.AvailableReplicas = *d.Spec.Replicas
		_, err = f.Kube.AppsV1().Deployments("ns").UpdateStatus(t.Context(), d, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	f.SetPodStatus("ns", "pedestrian-search-trackingworker-0", corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}})
	f.Sync("ns/pedestrian-search")
	got := f.Get("ns", "pedestrian-search")
	require.True(t, meta.IsStatusConditionTrue(got.Status.Conditions, workload.ConditionUserWorkerReady))
	require.True(t, meta.IsStatusConditionTrue(got.Status.Conditions, workload.ConditionReidWorkersReady))
	tracking := meta.FindStatusCondition(got.Status.Conditions, workload.ConditionTrackingWorkersReady)
	require.Equal(t, metav1.ConditionFalse, tracking.Status)
	require.Equal(t, "trackingworker 1/2 ready", tracking.Message)
	ready := meta.FindStatusCondition(got.Status.Conditions, sednav1.ConditionReady)
	require.Equal(t, metav1.ConditionFalse, ready.Status)
	require.Equal(t, "userworker 1/1 ready, trackingworker 1/2 ready, reidworker 5/5 ready", ready.Message)
	require.Equal(t, int32(7), got.Status.Active)

	f.SetPodStatus("ns", "pedestrian-search-trackingworker-1", corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}})
	f.Sync("ns/pedestrian-search")
	got = f.Get("ns", "pedestrian-search")
	require.True(t, meta.IsStatusConditionTrue(got.Status.Conditions, sednav1.ConditionReady))
	require.Equal(t, sednav1.PhaseRunning, got.Status.Phase)
}

func TestTrackingPodsAreReplacedLikeAReplicaSetsPods(t *testing.T) {
	f := workloadtest.New(t, Kind, "", search())
	f.Sync("ns/pedestrian-search")
	// Deleted: created again.
	require.NoError(t, f.Kube.CoreV1().Pods("ns").Delete(t.Context(), "pedestrian-search-trackingworker-1", metav1.DeleteOptions{}))
	f.Refresh()
	f.Sync("ns/pedestrian-search")
	require.Equal(t, []string{"create pods pedestrian-search-trackingworker-1"}, f.Writes())
	// Failed: deleted, and the next sync creates it again.
	f.SetPodStatus("ns", "pedestrian-search-trackingworker-0", corev1.PodStatus{Phase: corev1.PodFailed})
	f.Sync("ns/pedestrian-search")
	require.Equal(t, []string{"delete pods pedestrian-search-trackingworker-0"}, f.Writes())
	f.Sync("ns/pedestrian-search")
	require.Equal(t, []string{"create pods pedestrian-search-trackingworker-0"}, f.Writes())
	// A spec edit replaces the edited tracker and rolls out the Deployment it changes.
	edited := f.Get("ns", "pedestrian-search").DeepCopy()
	edited.Spec.TrackingWorkers[1].Template.Spec.Containers[0].Image = "track:v2"
	_, err := f.Sedna.SednaV1alpha1().ObjectSearchServices("ns").Update(t.Context(), edited, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.Refresh()
	f.Sync("ns/pedestrian-search")
	require.Equal(t, []string{"delete pods pedestrian-search-trackingworker-1"}, f.Writes())
	f.Sync("ns/pedestrian-search")
	require.Equal(t, []string{"create pods pedestrian-search-trackingworker-1"}, f.Writes())
	require.Equal(t, "track:v2", f.Pod("ns", "pedestrian-search-trackingworker-1").Spec.Containers[0].Image)
}

func TestAChildNameTakenByAnotherOwnerIsAConflict(t *testing.T) {
	f := workloadtest.New(t, Kind, "", search())
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "pedestrian-search-userworker", Namespace: "ns"}}
	_, err := f.Kube.CoreV1().Services("ns").Create(t.Context(), foreign, metav1.CreateOptions{})
	require.NoError(t, err)
	f.Refresh()
	require.ErrorContains(t, f.C.Sync(t.Context(), "ns/pedestrian-search"), "is not controlled by object search service pedestrian-search")
}
