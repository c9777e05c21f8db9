package featureextraction

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workload/workloadtest"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

func service(kafka bool, replicas *int32) *sednav1.FeatureExtractionService {
	s := &sednav1.FeatureExtractionService{
		ObjectMeta: metav1.ObjectMeta{Name: "feature-extraction", Namespace: "ns", UID: types.UID("uid-fe"), Generation: 1, ResourceVersion: "3"},
		Spec:       sednav1.FeatureExtractionServiceSpec{KafkaSupport: kafka, Model: sednav1.ModelReference{Name: "m3l"}},
	}
	s.Spec.Replicas = replicas
	s.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "feature-extraction"}}
	s.Spec.Template = corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "feature-extraction"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "feature-extraction", Image: "fe:v1", Env: []corev1.EnvVar{{Name: "input_shape", Value: "256,128"}},
		}}},
	}
	return s
}

func TestServiceChildrenAndEnv(t *testing.T) {
	tests := map[string]struct {
		kafka    bool
		replicas *int32
		want     []string
		replicaN int32
	}{
		"kafka, two replicas": {kafka: true, replicas: ptr.To[int32](2), replicaN: 2, want: []string{
			"input_shape=256,128", "SEDNA_HOST_IP=<status.hostIP>", "WORKER_NAME=<metadata.name>", "NAMESPACE=ns",
			"SERVICE_NAME=feature-extraction", "JOB_NAME=feature-extraction", "LC_SERVER=http://$(SEDNA_HOST_IP):9100",
			"KAFKA_ENABLED=true", "SEDNA_WORKER_TOKEN=<secret feature-extraction-featureextractionservice-worker-token/token>",
			"MODEL_URL=/home/data/models/m3l.pth", "DATA_PATH_PREFIX=/home/data",
		}},
		"no kafka, replicas unset (upstream dereferenced nil)": {replicaN: 1, want: []string{
			"input_shape=256,128", "SEDNA_HOST_IP=<status.hostIP>", "WORKER_NAME=<metadata.name>", "NAMESPACE=ns",
			"SERVICE_NAME=feature-extraction", "JOB_NAME=feature-extraction", "LC_SERVER=http://$(SEDNA_HOST_IP):9100",
			"SEDNA_WORKER_TOKEN=<secret feature-extraction-featureextractionservice-worker-token/token>",
			"MODEL_URL=/home/data/models/m3l.pth", "DATA_PATH_PREFIX=/home/data",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := workloadtest.New(t, Kind, "", service(tc.kafka, tc.replicas), workloadtest.HostModel("ns", "m3l", "/models/m3l.pth"))
			f.Sync("ns/feature-extraction")
			require.ElementsMatch(t, []string{"create deployments feature-extraction-deployment-fe", "create services feature-extraction-fe"}, f.Writes())
			d, err := f.Kube.AppsV1().Deployments("ns").Get(t.Context(), "feature-extraction-deployment-fe", metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, tc.replicaN, *d.Spec.Replicas)
			require.Equal(t, tc.want, workloadtest.Env(d.Spec.Template.Spec.Containers[0]))
			require.Equal(t, "feature-extraction-fe-svc", d.Spec.Selector.MatchLabels["app.sedna.io"])
			svc, err := f.Kube.CoreV1().Services("ns").Get(t.Context(), "feature-extraction-fe", metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, int32(6000), svc.Spec.Ports[0].Port)
		})
	}
}

// Upstream counted three Deployments where it makes one and marked every service Failed on its
// second sync; here the service is Running, then Ready when its replicas are available.
func TestStatusCountsTheOneDeploymentAndReadiness(t *testing.T) {
	f := workloadtest.New(t, Kind, "", service(false, ptr.To[int32](2)), workloadtest.HostModel("ns", "m3l", "/models/m3l.pth"))
	f.Sync("ns/feature-extraction")
	f.Sync("ns/feature-extraction")
	got := f.Get("ns", "feature-extraction")
	require.Equal(t, sednav1.PhaseRunning, got.Status.Phase)
	require.Nil(t, meta.FindStatusCondition(got.Status.Conditions, sednav1.ConditionFailed))
	ready := meta.FindStatusCondition(got.Status.Conditions, sednav1.ConditionReady)
	require.Equal(t, metav1.ConditionFalse, ready.Status)
	require.Equal(t, "fe 0/2 ready", ready.Message)

	d, err := f.Kube.AppsV1().Deployments("ns").Get(t.Context(), "feature-extraction-deployment-fe", metav1.GetOptions{})
	require.NoError(t, err)
	d.Status = appsv1.DeploymentStatus{AvailableReplicas: 2}
	_, err = f.Kube.AppsV1().Deployments("ns").UpdateStatus(t.Context(), d, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.Refresh()
	f.Sync("ns/feature-extraction")
	got = f.Get("ns", "feature-extraction")
	require.True(t, meta.IsStatusConditionTrue(got.Status.Conditions, sednav1.ConditionReady))
	require.Equal(t, int32(2), got.Status.Active)
	require.Equal(t, int32(0), got.Status.Failed)
}

func TestSpecEditRollsOutAndDeletedChildrenComeBack(t *testing.T) {
	s := service(false, nil)
	f := workloadtest.New(t, Kind, "", s, workloadtest.HostModel("ns", "m3l", "/models/m3l.pth"))
	f.Sync("ns/feature-extraction")
	edited := f.Get("ns", "feature-extraction").DeepCopy()
	edited.Spec.Template.Spec.Containers[0].Image = "fe:v2"
	edited.Spec.Replicas = ptr.To[int32](3)
	edited.Generation = 2
	_, err := f.Sedna.SednaV1alpha1().FeatureExtractionServices("ns").Update(t.Context(), edited, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.Refresh()
	f.Sync("ns/feature-extraction")
	require.Equal(t, []string{"update deployments feature-extraction-deployment-fe"}, f.Writes())
	d, err := f.Kube.AppsV1().Deployments("ns").Get(t.Context(), "feature-extraction-deployment-fe", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "fe:v2", d.Spec.Template.Spec.Containers[0].Image)
	require.Equal(t, int32(3), *d.Spec.Replicas)

	require.NoError(t, f.Kube.AppsV1().Deployments("ns").Delete(t.Context(), "feature-extraction-deployment-fe", metav1.DeleteOptions{}))
	f.Refresh()
	f.Sync("ns/feature-extraction")
	require.Equal(t, []string{"create deployments feature-extraction-deployment-fe"}, f.Writes())
}

func TestWorkerReportsBecomeMetrics(t *testing.T) {
	f := workloadtest.New(t, Kind, "", service(false, nil), workloadtest.HostModel("ns", "m3l", "/models/m3l.pth"))
	f.Sync("ns/feature-extraction")
	require.Equal(t, []string{"featureextractionservice"}, f.C.ReportKinds())
	// A worker that is not one of the service's pods is ignored.
	key := runtime.Key("featureextractionservice", "ns", "feature-extraction")
	require.NoError(t, f.C.HandleReport(t.Context(), "edge-1", key, []byte(
		`{"phase":"inference","status":"running","output":{"models":null,"ownerInfo":{"features":7}},"worker":"stranger"}`)))
	f.Sync("ns/feature-extraction")
	require.Empty(t, f.Get("ns", "feature-extraction").Status.Metrics)

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fe-pod", Namespace: "ns", Labels: map[string]string{
		"featureextractionservice.sedna.io/name": "feature-extraction", "featureextractionservice.sedna.io/uid": "uid-fe",
		"featureextractionservice.sedna.io/worker-type": "fe",
	}}, Spec: corev1.PodSpec{NodeName: "edge-1"}}
	_, err := f.Kube.CoreV1().Pods("ns").Create(t.Context(), pod, metav1.CreateOptions{})
	require.NoError(t, err)
	f.Refresh()
	// The LC of another node speaks only for its own node's workers; a report naming no worker
	// could never be pruned.
	require.NoError(t, f.C.HandleReport(t.Context(), "edge-2", key, []byte(
		`{"phase":"inference","status":"running","output":{"models":null,"ownerInfo":{"features":666}},"worker":"fe-pod"}`)))
	require.NoError(t, f.C.HandleReport(t.Context(), "edge-1", key, []byte(
		`{"phase":"inference","status":"running","output":{"models":null,"ownerInfo":{"features":667}}}`)))
	f.Sync("ns/feature-extraction")
	require.Empty(t, f.Get("ns", "feature-extraction").Status.Metrics, "a report of another node's LC or of no worker was kept")

	require.NoError(t, f.C.HandleReport(t.Context(), "edge-1", key, []byte(
		`{"phase":"inference","status":"running","output":{"models":null,"ownerInfo":{"features":7,"model":"m3l","updateTime":"t"}},"worker":"fe-pod"}`)))
	f.Sync("ns/feature-extraction")
	require.Equal(t, []sednav1.Metric{{Key: "features", Value: "7"}, {Key: "model", Value: "m3l"}},
		f.Get("ns", "feature-extraction").Status.Metrics)

	// What is kept is bounded: keys beyond the 64th and long values are dropped, and an Event says so.
	info := map[string]any{"big": strings.Repeat("x", 1025)}
	for i := range 70 {
		info[fmt.Sprintf("k%02d", i)] = i
	}
	content, err := json.Marshal(map[string]any{"phase": "inference", "status": "running", "worker": "fe-pod",
		"output": map[string]any{"models": nil, "ownerInfo": info}})
	require.NoError(t, err)
	for len(f.Recorder.Events) > 0 {
		<-f.Recorder.Events
	}
	require.NoError(t, f.C.HandleReport(t.Context(), "edge-1", key, content))
	f.Sync("ns/feature-extraction")
	metrics := f.Get("ns", "feature-extraction").Status.Metrics
	require.Len(t, metrics, 64)
	require.Equal(t, "k00", metrics[0].Key, "the big value was dropped")
	require.Equal(t, "k63", metrics[63].Key)
	var truncated string
	for len(f.Recorder.Events) > 0 {
		if event := <-f.Recorder.Events; strings.Contains(event, "ReportTruncated") {
			truncated = event
		}
	}
	require.Contains(t, truncated, `"big" (a value of 1025 bytes)`)
	require.Contains(t, truncated, `"k64" (over 64 keys)`)
	require.Contains(t, truncated, "and 2 more keys")
	require.ErrorContains(t, f.C.HandleReport(t.Context(), "edge-1", key, []byte(`{"phase":1}`)), "decoding")
}
