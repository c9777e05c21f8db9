package jointinference

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

// workerPod is a running pod of the service's Deployment as the ReplicaSet would create it.
func (f *fixture) workerPod(deployment, name, node, ip, resourceVersion string) *corev1.Pod {
	f.t.Helper()
	template := f.deployment(deployment).Spec.Template
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: resourceVersion, Labels: template.Labels},
		Spec:       *template.Spec.DeepCopy(),
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	pod.Spec.NodeName = node
	_, err := f.kube.CoreV1().Pods("ns").Create(context.Background(), pod, metav1.CreateOptions{})
	require.NoError(f.t, err)
	return pod
}

func TestWorkersGetTheServicesTokenAndTheLCLearnsItsWorkers(t *testing.T) {
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	f.syncAndRefresh("ns/helmet")
	ctx := context.Background()

	secret, err := f.kube.CoreV1().Secrets("ns").Get(ctx, "helmet-jointinferenceservice-worker-token", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"sedna.io/worker-token": "true"}, secret.Labels)
	require.Equal(t, "uid-1", string(metav1.GetControllerOf(secret).UID))
	require.Equal(t, KindName, metav1.GetControllerOf(secret).Kind)
	token := string(secret.Data["token"])
	require.Regexp(t, `^[A-Za-z0-9_-]{43}$`, token)
	for _, d := range []string{"helmet-deployment-edge", "helmet-deployment-cloud"} {
		for _, c := range f.deployment(d).Spec.Template.Spec.Containers {
			require.Contains(t, c.Env, corev1.EnvVar{Name: "SEDNA_WORKER_TOKEN", ValueFrom: tokenRef()}, d)
		}
	}

	// Two edge replicas on edge-1; the cloud worker elsewhere; a replica being deleted.
	f.workerPod("helmet-deployment-edge", "helmet-deployment-edge-7f-b", "edge-1", "10.0.0.12", "31")
	f.workerPod("helmet-deployment-edge", "helmet-deployment-edge-7f-a", "edge-1", "10.0.0.11", "30")
	f.workerPod("helmet-deployment-cloud", "helmet-deployment-cloud-5c-a", "cloud-1", "10.9.0.2", "33")
	leaving := f.workerPod("helmet-deployment-edge", "helmet-deployment-edge-7f-c", "edge-1", "10.0.0.13", "32")
	leaving.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	_, err = f.kube.CoreV1().Pods("ns").Update(ctx, leaving, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.refresh()
	f.syncAndRefresh("ns/helmet")

	key := runtime.Key(Kind, "ns", "helmet")
	require.Equal(t, []string{"edge-1"}, f.downstream.nodes[key])
	var published sednav1.JointInferenceService
	require.NoError(t, json.Unmarshal(f.downstream.objects[key], &published))
	require.Equal(t, workerauth.HashToken(token), published.Annotations["sedna.io/worker-token-sha256"])
	require.Equal(t, `[`+
		`{"pod":"helmet-deployment-edge-7f-a","worker":"helmet-deployment-edge-7f-a","ip":"10.0.0.11","kind":"edge"},`+
		`{"pod":"helmet-deployment-edge-7f-b","worker":"helmet-deployment-edge-7f-b","ip":"10.0.0.12","kind":"edge"}]`,
		published.Annotations["sedna.io/workers"], "only this node's live workers, by pod name")
	require.Equal(t, uint64(32), f.downstream.versions[key], "the newest pod on the node sets the version")
	require.Empty(t, f.service("helmet").Annotations, "the annotations are only on the published copy")

	// The pod event of an IP change wakes the service, which republishes.
	moved, err := f.kube.CoreV1().Pods("ns").Get(ctx, "helmet-deployment-edge-7f-a", metav1.GetOptions{})
	require.NoError(t, err)
	moved.Status.PodIP, moved.ResourceVersion = "10.0.0.21", "40"
	_, err = f.kube.CoreV1().Pods("ns").UpdateStatus(ctx, moved, metav1.UpdateOptions{})
	require.NoError(t, err)
	for f.c.queue.Len() > 0 {
		k, _ := f.c.queue.Get()
		f.c.queue.Done(k)
	}
	f.c.enqueueLabeled(moved)
	require.Equal(t, 1, f.c.queue.Len())
	f.refresh()
	f.syncAndRefresh("ns/helmet")
	require.NoError(t, json.Unmarshal(f.downstream.objects[key], &published))
	require.Contains(t, published.Annotations["sedna.io/workers"], `"ip":"10.0.0.21"`)
	require.Equal(t, uint64(40), f.downstream.versions[key])

	// Created once: a later sync keeps the token.
	f.syncAndRefresh("ns/helmet")
	again, err := f.kube.CoreV1().Secrets("ns").Get(ctx, "helmet-jointinferenceservice-worker-token", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, token, string(again.Data["token"]))
}

func TestASecretOfTheTokensNameTheServiceDoesNotControlBlocksIt(t *testing.T) {
	squatter := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "helmet-jointinferenceservice-worker-token", Namespace: "ns",
		Labels: map[string]string{"sedna.io/worker-token": "true"}}, Data: map[string][]byte{"token": []byte("chosen")}}
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")}, squatter)
	f.syncAndRefresh("ns/helmet")
	require.Empty(t, f.writes(), "no worker reads a token someone else chose")
	ready := f.service("helmet").Status.Conditions[0]
	require.Equal(t, "WorkerTokenConflict", ready.Reason)
	require.Contains(t, ready.Message, "not controlled by JointInferenceService helmet")
}

func TestEdgeReplicasCountersAreSummedPerWorker(t *testing.T) {
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	f.syncAndRefresh("ns/helmet")
	f.workerPod("helmet-deployment-edge", "edge-a", "edge-1", "10.0.0.11", "30")
	f.workerPod("helmet-deployment-edge", "edge-b", "edge-1", "10.0.0.12", "31")
	f.refresh()
	key := runtime.Key(Kind, "ns", "helmet")
	report := func(worker string, inferences, hard int) {
		t.Helper()
		content := fmt.Sprintf(`{"phase":"inference","status":"","worker":%q,"output":{"models":null,"ownerInfo":`+
			`{"inferenceNumber":%d,"hardExampleNumber":%d,"uploadCloudRatio":%v,"startTime":"s","updateTime":"u"}}}`,
			worker, inferences, hard, float64(hard)/float64(inferences))
		require.NoError(t, f.c.HandleReport(context.Background(), "edge-1", key, []byte(content)))
	}
	metrics := func() map[string]string {
		t.Helper()
		f.syncAndRefresh("ns/helmet")
		out := map[string]string{}
		for _, m := range f.service("helmet").Status.Metrics {
			out[m.Key] = m.Value
		}
		return out
	}

	// Interleaved cumulative reports of two replicas.
	for f.c.queue.Len() > 0 { // what the first sync and the pods enqueued
		key, _ := f.c.queue.Get()
		f.c.queue.Done(key)
	}
	report("edge-a", 10, 2)
	report("edge-b", 5, 1)
	report("edge-a", 12, 3)
	require.Zero(t, f.c.queue.Len(), "a burst of reports is synced once, after runtime.ReportCoalescing")
	require.Equal(t, map[string]string{"inferenceNumber": "17", "hardExampleNumber": "4", "uploadCloudRatio": "0.23529411764705882"}, metrics())
	report("edge-b", 8, 4)
	require.Equal(t, map[string]string{"inferenceNumber": "20", "hardExampleNumber": "7", "uploadCloudRatio": "0.35"}, metrics())

	// A name that is no pod of the service is not kept.
	report("forged-worker", 1000, 1000)
	require.Equal(t, "20", metrics()["inferenceNumber"])
	// Nor the report of another node's LC about edge-a, which runs on edge-1.
	require.NoError(t, f.c.HandleReport(context.Background(), "edge-9", key, []byte(
		`{"phase":"inference","status":"","worker":"edge-a","output":{"models":null,"ownerInfo":{"inferenceNumber":1000,"hardExampleNumber":1000}}}`)))
	require.Equal(t, "20", metrics()["inferenceNumber"], "another node's LC overwrote edge-a's counters")
	// Nor is a pod of another service in the namespace.
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other-edge", Namespace: "ns", Labels: map[string]string{
		"jointinferenceservice.sedna.io/name": "other", "jointinferenceservice.sedna.io/uid": "uid-other"}}}
	other.Spec.NodeName = "edge-1"
	_, err := f.kube.CoreV1().Pods("ns").Create(context.Background(), other, metav1.CreateOptions{})
	require.NoError(t, err)
	f.refresh()
	report("other-edge", 1000, 1000)
	require.NotContains(t, f.c.reports.Reported("ns/helmet"), "other-edge", "the counters of another service's pod were kept")
	require.Equal(t, "20", metrics()["inferenceNumber"], "a pod of another service was counted")

	// edge-b is gone: its counters leave the sum, and the map.
	require.NoError(t, f.kube.CoreV1().Pods("ns").Delete(context.Background(), "edge-b", metav1.DeleteOptions{}))
	f.refresh()
	require.Equal(t, map[string]string{"inferenceNumber": "12", "hardExampleNumber": "3", "uploadCloudRatio": "0.25"}, metrics())
	require.Equal(t, []string{"edge-a"}, f.c.reports.Reported("ns/helmet"))

	// A service created again under the same name starts without the old counters.
	recreated := f.service("helmet")
	recreated.UID = "uid-2"
	require.NoError(t, f.sednaInformers.Sedna().V1alpha1().JointInferenceServices().Informer().GetIndexer().Update(recreated))
	require.NotEmpty(t, f.c.reports.Reported("ns/helmet"))
	_, ok := f.c.reportedMetrics(recreated, nil)
	require.False(t, ok)
}

func TestReportsDroppedByAFullOutboxAreACondition(t *testing.T) {
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	f.syncAndRefresh("ns/helmet")
	f.workerPod("helmet-deployment-edge", "edge-a", "edge-1", "10.0.0.11", "30")
	f.refresh()
	key := runtime.Key(Kind, "ns", "helmet")
	report := func(node, dropped string) {
		t.Helper()
		content := `{"phase":"inference","status":"","worker":"edge-a",` + dropped +
			`"output":{"models":null,"ownerInfo":{"inferenceNumber":10,"hardExampleNumber":2}}}`
		require.NoError(t, f.c.HandleReport(context.Background(), node, key, []byte(content)))
		f.syncAndRefresh("ns/helmet")
	}
	condition := func() *metav1.Condition {
		return meta.FindStatusCondition(f.service("helmet").Status.Conditions, "ReportsDropped")
	}

	report("edge-1", "")
	require.Nil(t, condition(), "no condition until an LC refuses a report")

	report("edge-1", `"dropped":7,`)
	dropped := condition()
	require.NotNil(t, dropped)
	require.Equal(t, metav1.ConditionTrue, dropped.Status)
	require.Equal(t, "OutboxFull", dropped.Reason)
	require.Contains(t, dropped.Message, "the LC on node edge-1 refused 7 reports")

	report("edge-2", `"dropped":3,`)
	require.Contains(t, condition().Message, "node edge-1 refused 7 reports; the LC on node edge-2 refused 3 reports")

	// Reports without a count again: the node delivers everything.
	report("edge-1", "")
	report("edge-2", "")
	require.Equal(t, metav1.ConditionFalse, condition().Status)
	require.Equal(t, "ReportsDelivered", condition().Reason)
	require.Equal(t, "10", f.service("helmet").Status.Metrics[1].Value, "the counters still arrive")
}
