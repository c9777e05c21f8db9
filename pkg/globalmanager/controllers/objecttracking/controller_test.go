package objecttracking

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workload"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workload/workloadtest"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

func tracking() *sednav1.ObjectTrackingService {
	s := &sednav1.ObjectTrackingService{
		ObjectMeta: metav1.ObjectMeta{Name: "pedestrian-tracking", Namespace: "ns", UID: types.UID("uid-ot"), Generation: 1, ResourceVersion: "3"},
		Spec: sednav1.ObjectTrackingServiceSpec{TrackingWorkers: []sednav1.TrackingWorker{
			{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: "edge-1", Containers: []corev1.Container{{Name: "t0", Image: "track:v1"}}}}},
		}},
	}
	s.Spec.ReidWorkers.Template = corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "reid", Image: "reid:v1"}}}}
	return s
}

func TestReconciledForTheFirstTime(t *testing.T) {
	f := workloadtest.New(t, Kind, "", tracking())
	f.Sync("ns/pedestrian-tracking")
	require.ElementsMatch(t, []string{
		"create deployments pedestrian-tracking-deployment-reidworker", "create services pedestrian-tracking-reidworker",
		"create pods pedestrian-tracking-trackingworker-0",
	}, f.Writes())
	require.Equal(t, []string{
		"NAMESPACE=ns", "SERVICE_NAME=pedestrian-tracking", "WORKER_NAME=<metadata.name>",
		"EDGEMESH_URL=pedestrian-tracking-reidworker.ns:9378", "SEDNA_WORKER_TOKEN=<secret pedestrian-tracking-objecttrackingservice-worker-token/token>",
	}, workloadtest.Env(f.Pod("ns", "pedestrian-tracking-trackingworker-0").Spec.Containers[0]))
	require.Contains(t, f.Downstream.Objects[runtime.Key("objecttrackingservice", "ns", "pedestrian-tracking")], "edge-1")

	got := f.Get("ns", "pedestrian-tracking")
	require.Equal(t, sednav1.PhaseRunning, got.Status.Phase)
	require.Equal(t, "trackingworker 0/1 ready", meta.FindStatusCondition(got.Status.Conditions, workload.ConditionTrackingWorkersReady).Message)
	require.Equal(t, "reidworker 0/1 ready", meta.FindStatusCondition(got.Status.Conditions, workload.ConditionReidWorkersReady).Message)
	require.Nil(t, meta.FindStatusCondition(got.Status.Conditions, workload.ConditionUserWorkerReady), "no user worker")
}
