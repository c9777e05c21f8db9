package reid

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workload/workloadtest"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

func job(kafka bool, restart corev1.RestartPolicy) *sednav1.ReidJob {
	j := &sednav1.ReidJob{
		ObjectMeta: metav1.ObjectMeta{Name: "reid", Namespace: "ns", UID: types.UID("uid-reid"), Generation: 1, ResourceVersion: "3"},
		Spec:       sednav1.ReidJobSpec{KafkaSupport: kafka},
	}
	j.Spec.Template = corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: restart, Containers: []corev1.Container{{
		Name: "reid", Image: "reid:v1", Env: []corev1.EnvVar{{Name: "match_thresh", Value: "0.35"}},
	}}}}
	return j
}

func TestJobChildrenAndEnv(t *testing.T) {
	tests := map[string]struct {
		kafka       bool
		restart     corev1.RestartPolicy
		wantRestart corev1.RestartPolicy
		want        []string
	}{
		"kafka, OnFailure kept": {kafka: true, restart: corev1.RestartPolicyOnFailure, wantRestart: corev1.RestartPolicyOnFailure, want: []string{
			"match_thresh=0.35", "SEDNA_HOST_IP=<status.hostIP>", "WORKER_NAME=<metadata.name>", "JOB_NAME=reid", "NAMESPACE=ns",
			"LC_SERVER=http://$(SEDNA_HOST_IP):9100", "KAFKA_ENABLED=true", "SEDNA_WORKER_TOKEN=<secret reid-reidjob-worker-token/token>",
		}},
		"no kafka, empty restart policy": {wantRestart: corev1.RestartPolicyNever, want: []string{
			"match_thresh=0.35", "SEDNA_HOST_IP=<status.hostIP>", "WORKER_NAME=<metadata.name>", "JOB_NAME=reid", "NAMESPACE=ns",
			"LC_SERVER=http://$(SEDNA_HOST_IP):9100", "SEDNA_WORKER_TOKEN=<secret reid-reidjob-worker-token/token>",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := workloadtest.New(t, Kind, "", job(tc.kafka, tc.restart))
			f.Sync("ns/reid")
			require.ElementsMatch(t, []string{"create services reid-reid", "create pods reid-reid-1"}, f.Writes())
			pod := f.Pod("ns", "reid-reid-1")
			require.Equal(t, tc.want, workloadtest.Env(pod.Spec.Containers[0]))
			require.Equal(t, tc.wantRestart, pod.Spec.RestartPolicy)
			svc, err := f.Kube.CoreV1().Services("ns").Get(t.Context(), "reid-reid", metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, int32(5000), svc.Spec.Ports[0].Port, "the library's default reid-reid:5000 resolves")
		})
	}
}

func TestFirstFailureIsFinalWithoutBackoffLimit(t *testing.T) {
	f := workloadtest.New(t, Kind, "", job(false, ""))
	f.Sync("ns/reid")
	f.SetPodStatus("ns", "reid-reid-1", corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "low memory"})
	f.Sync("ns/reid")
	require.Empty(t, f.Writes())
	got := f.Get("ns", "reid")
	require.Equal(t, sednav1.PhaseFailed, got.Status.Phase)
	c := meta.FindStatusCondition(got.Status.Conditions, sednav1.ConditionFailed)
	require.Equal(t, runtime.ReasonWorkerFailed, c.Reason)
	require.Contains(t, c.Message, "Evicted low memory")
	require.Equal(t, int32(1), got.Status.Failed)
}
