package videoanalytics

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workload/workloadtest"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

func job(kafka bool, backoff *int32) *sednav1.VideoAnalyticsJob {
	j := &sednav1.VideoAnalyticsJob{
		ObjectMeta: metav1.ObjectMeta{Name: "video-analytics", Namespace: "ns", UID: types.UID("uid-va"), Generation: 1, ResourceVersion: "3"},
		Spec:       sednav1.VideoAnalyticsJobSpec{KafkaSupport: kafka, Model: sednav1.ModelReference{Name: "yolox"}},
	}
	j.Spec.BackoffLimit = backoff
	j.Spec.Template = corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: "edge-1", Containers: []corev1.Container{{
		Name: "detection", Image: "va:v1", Env: []corev1.EnvVar{{Name: "fps", Value: "5"}},
	}}}}
	return j
}

func TestJobChildrenAndEnv(t *testing.T) {
	tests := map[string]struct {
		kafka    bool
		lcServer string
		want     []string
	}{
		"kafka, local LC": {kafka: true, lcServer: "http://localhost:9100", want: []string{
			"fps=5", "SEDNA_HOST_IP=<status.hostIP>", "WORKER_NAME=<metadata.name>", "JOB_NAME=video-analytics", "NAMESPACE=ns",
			"MODEL_NAME=yolox", "LC_SERVER=http://$(SEDNA_HOST_IP):9100", "KAFKA_ENABLED=true",
			"SEDNA_WORKER_TOKEN=<secret video-analytics-videoanalyticsjob-worker-token/token>", "MODEL_URL=/home/data/models/yolox.pth", "DATA_PATH_PREFIX=/home/data",
		}},
		"no kafka, remote LC": {lcServer: "http://lc.example:9100", want: []string{
			"fps=5", "WORKER_NAME=<metadata.name>", "JOB_NAME=video-analytics", "NAMESPACE=ns",
			"MODEL_NAME=yolox", "LC_SERVER=http://lc.example:9100",
			"SEDNA_WORKER_TOKEN=<secret video-analytics-videoanalyticsjob-worker-token/token>", "MODEL_URL=/home/data/models/yolox.pth", "DATA_PATH_PREFIX=/home/data",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := workloadtest.New(t, Kind, tc.lcServer, job(tc.kafka, nil), workloadtest.HostModel("ns", "yolox", "/models/yolox.pth"))
			f.Sync("ns/video-analytics")
			require.ElementsMatch(t, []string{"create services video-analytics-videoanalytics", "create pods video-analytics-videoanalytics-1"}, f.Writes())
			pod := f.Pod("ns", "video-analytics-videoanalytics-1")
			require.Equal(t, tc.want, workloadtest.Env(pod.Spec.Containers[0]))
			require.Equal(t, corev1.RestartPolicyNever, pod.Spec.RestartPolicy, "an empty restart policy becomes Never so the pod can end")
			require.Equal(t, "videoanalytics", pod.Labels["videoanalyticsjob.sedna.io/worker-type"])
			svc, err := f.Kube.CoreV1().Services("ns").Get(t.Context(), "video-analytics-videoanalytics", metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, int32(4000), svc.Spec.Ports[0].Port)
			require.Equal(t, "videoanalytics", svc.Spec.Selector["videoanalyticsjob.sedna.io/worker-type"])
			require.Contains(t, f.Downstream.Objects, runtime.Key("videoanalyticsjob", "ns", "video-analytics"), "published to the node for the LC's worker API")
			require.Equal(t, []string{"edge-1"}, f.Models.Nodes(runtime.Key("model", "ns", "yolox")))

			f.Sync("ns/video-analytics")
			require.Empty(t, f.Writes(), "a second sync writes nothing")
			got := f.Get("ns", "video-analytics")
			require.Equal(t, sednav1.PhasePending, got.Status.Phase)
			require.Equal(t, int32(1), got.Status.Active)
		})
	}
}

func TestJobRetriesUpToBackoffLimitThenFails(t *testing.T) {
	f := workloadtest.New(t, Kind, "", job(false, ptr.To[int32](1)), workloadtest.HostModel("ns", "yolox", "/models/yolox.pth"))
	f.Sync("ns/video-analytics")
	failed := corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{Name: "detection",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}}}}
	f.SetPodStatus("ns", "video-analytics-videoanalytics-1", failed)
	f.Sync("ns/video-analytics")
	require.Equal(t, []string{"create pods video-analytics-videoanalytics-2"}, f.Writes(), "one retry within backoffLimit 1")
	require.Equal(t, int32(1), f.Get("ns", "video-analytics").Status.Failed)

	f.SetPodStatus("ns", "video-analytics-videoanalytics-2", failed)
	f.Sync("ns/video-analytics")
	require.Empty(t, f.Writes())
	got := f.Get("ns", "video-analytics")
	require.Equal(t, sednav1.PhaseFailed, got.Status.Phase)
	c := meta.FindStatusCondition(got.Status.Conditions, sednav1.ConditionFailed)
	require.NotNil(t, c)
	require.Equal(t, runtime.ReasonBackoffLimitExceed, c.Reason)
	require.Contains(t, c.Message, "container detection exited with 2")
	require.NotNil(t, got.Status.CompletionTime)

	// Terminal: deleting the failed pods creates nothing.
	require.NoError(t, f.Kube.CoreV1().Pods("ns").Delete(t.Context(), "video-analytics-videoanalytics-2", metav1.DeleteOptions{}))
	f.Refresh()
	f.Sync("ns/video-analytics")
	require.Empty(t, f.Writes())
}

func TestJobCompletesAndADeletedRunningPodIsRecreated(t *testing.T) {
	f := workloadtest.New(t, Kind, "", job(false, nil), workloadtest.HostModel("ns", "yolox", "/models/yolox.pth"))
	f.Sync("ns/video-analytics")
	require.NoError(t, f.Kube.CoreV1().Pods("ns").Delete(t.Context(), "video-analytics-videoanalytics-1", metav1.DeleteOptions{}))
	require.NoError(t, f.Kube.CoreV1().Services("ns").Delete(t.Context(), "video-analytics-videoanalytics", metav1.DeleteOptions{}))
	f.Refresh()
	f.Sync("ns/video-analytics")
	require.ElementsMatch(t, []string{"create pods video-analytics-videoanalytics-1", "create services video-analytics-videoanalytics"}, f.Writes())

	f.SetPodStatus("ns", "video-analytics-videoanalytics-1", corev1.PodStatus{Phase: corev1.PodRunning})
	f.Sync("ns/video-analytics")
	require.Equal(t, sednav1.PhaseRunning, f.Get("ns", "video-analytics").Status.Phase)

	f.SetPodStatus("ns", "video-analytics-videoanalytics-1", corev1.PodStatus{Phase: corev1.PodSucceeded})
	f.Sync("ns/video-analytics")
	got := f.Get("ns", "video-analytics")
	require.Equal(t, sednav1.PhaseSucceeded, got.Status.Phase)
	require.True(t, meta.IsStatusConditionTrue(got.Status.Conditions, sednav1.ConditionCompleted))
	require.Equal(t, int32(1), got.Status.Succeeded)
	require.Equal(t, int32(0), got.Status.Active)
	require.Contains(t, drain(f.Recorder.Events), "Normal Completed the worker succeeded")
}

func TestMissingModelBlocksWithAReason(t *testing.T) {
	f := workloadtest.New(t, Kind, "", job(false, nil))
	f.Sync("ns/video-analytics")
	require.Empty(t, f.Writes(), "no child without the model")
	got := f.Get("ns", "video-analytics")
	c := meta.FindStatusCondition(got.Status.Conditions, sednav1.ConditionRunning)
	require.NotNil(t, c)
	require.Equal(t, "ModelNotFound", c.Reason)
}

func drain(events chan string) []string {
	var out []string
	for {
		select {
		case e := <-events:
			out = append(out, e)
		default:
			return out
		}
	}
}
