package jointinference

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

var helmetOwnerRefs = []metav1.OwnerReference{{
	APIVersion: "sedna.io/v1alpha1", Kind: "JointInferenceService", Name: "helmet", UID: "uid-1",
	Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
}}

func workerLabels(workerType string) map[string]string {
	return map[string]string{
		"jointinferenceservice.sedna.io/name": "helmet", "jointinferenceservice.sedna.io/uid": "uid-1",
		"jointinferenceservice.sedna.io/worker-type": workerType,
	}
}

func withApp(labels map[string]string, app string) map[string]string {
	labels["app.sedna.io"] = app
	return labels
}

func hostIPEnv() corev1.EnvVar {
	return corev1.EnvVar{Name: "SEDNA_HOST_IP", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.hostIP"}}}
}

func podNameEnv(name string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}
}

func tokenRef() *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "helmet-jointinferenceservice-worker-token"}, Key: "token"}}
}

func TestChildrenAreCreatedWithTheirNamesLabelsOwnersAndEnv(t *testing.T) {
	tests := map[string]struct {
		lcServer string
		edgeEnv  []corev1.EnvVar
		cloudEnv []corev1.EnvVar
	}{
		"default LC URL: reached at the node's IP": {
			lcServer: "http://localhost:9100",
			edgeEnv: []corev1.EnvVar{
				{Name: "input_shape", Value: "416,736"},
				hostIPEnv(),
				{Name: "BIG_MODEL_IP", Value: "helmet-cloud.ns"},
				{Name: "BIG_MODEL_PORT", Value: "5000"},
				{Name: "HEM_NAME", Value: "IBT"},
				{Name: "HEM_PARAMETERS", Value: `[{"key":"threshold_img","value":"0.9"},{"key":"threshold_box","value":"0.8"}]`},
				{Name: "LC_SERVER", Value: "http://$(SEDNA_HOST_IP):9100"},
				{Name: "NAMESPACE", Value: "ns"},
				{Name: "SERVICE_NAME", Value: "helmet"},
				podNameEnv("WORKER_NAME"),
				{Name: "JOB_NAME", Value: "helmet"},
				{Name: "SEDNA_WORKER_TOKEN", ValueFrom: tokenRef()},
				{Name: "MODEL_URL", Value: "/home/data/models/little.pb"},
				{Name: "DATA_PATH_PREFIX", Value: "/home/data"},
			},
			cloudEnv: []corev1.EnvVar{
				{Name: "input_shape", Value: "544,544"},
				{Name: "BIG_MODEL_BIND_PORT", Value: "5000"},
				{Name: "NAMESPACE", Value: "ns"},
				{Name: "SERVICE_NAME", Value: "helmet"},
				{Name: "WORKER_NAME", Value: "cloudworker-4a49a"},
				{Name: "JOB_NAME", Value: "helmet"},
				{Name: "SEDNA_WORKER_TOKEN", ValueFrom: tokenRef()},
				{Name: "MODEL_URL", Value: "/home/data/models/big.pb"},
				{Name: "DATA_PATH_PREFIX", Value: "/home/data"},
			},
		},
		"operator's LC URL used verbatim": {
			lcServer: "http://lc.example:9200",
			edgeEnv: []corev1.EnvVar{
				{Name: "input_shape", Value: "416,736"},
				{Name: "BIG_MODEL_IP", Value: "helmet-cloud.ns"},
				{Name: "BIG_MODEL_PORT", Value: "5000"},
				{Name: "HEM_NAME", Value: "IBT"},
				{Name: "HEM_PARAMETERS", Value: `[{"key":"threshold_img","value":"0.9"},{"key":"threshold_box","value":"0.8"}]`},
				{Name: "LC_SERVER", Value: "http://lc.example:9200"},
				{Name: "NAMESPACE", Value: "ns"},
				{Name: "SERVICE_NAME", Value: "helmet"},
				podNameEnv("WORKER_NAME"),
				{Name: "JOB_NAME", Value: "helmet"},
				{Name: "SEDNA_WORKER_TOKEN", ValueFrom: tokenRef()},
				{Name: "MODEL_URL", Value: "/home/data/models/little.pb"},
				{Name: "DATA_PATH_PREFIX", Value: "/home/data"},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, tc.lcServer, []k8sruntime.Object{helmet(),
				hostModel("big", "/models/big.pb"), hostModel("little", "/models/little.pb")})
			f.syncAndRefresh("ns/helmet")
			require.ElementsMatch(t, []string{
				"create deployments helmet-deployment-cloud", "create services helmet-cloud", "create deployments helmet-deployment-edge",
			}, f.writes())

			for _, w := range []struct{ name, workerType, app string }{
				{"helmet-deployment-cloud", "cloud", "helmet-Cloud-svc"},
				{"helmet-deployment-edge", "edge", "helmet-Edge-svc"},
			} {
				d := f.deployment(w.name)
				want := withApp(workerLabels(w.workerType), w.app)
				require.Equal(t, want, d.Labels, w.name)
				require.Equal(t, &metav1.LabelSelector{MatchLabels: want}, d.Spec.Selector, w.name)
				require.Equal(t, want, d.Spec.Template.Labels, w.name)
				require.Equal(t, helmetOwnerRefs, d.OwnerReferences, w.name)
				require.Equal(t, ptr.To[int32](1), d.Spec.Replicas, w.name)
				require.NotEmpty(t, d.Annotations[workers.SpecHashAnnotation])
			}
			edge := f.deployment("helmet-deployment-edge")
			require.Equal(t, tc.edgeEnv, edge.Spec.Template.Spec.Containers[0].Env)
			require.Equal(t, "edge-1", edge.Spec.Template.Spec.NodeName)
			require.False(t, edge.Spec.Template.Spec.HostNetwork)
			require.Equal(t, []corev1.Volume{{Name: "models", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: "/models", Type: ptr.To(corev1.HostPathDirectory)}}}}, edge.Spec.Template.Spec.Volumes)
			require.Equal(t, []corev1.VolumeMount{{Name: "models", MountPath: "/home/data/models"}},
				edge.Spec.Template.Spec.Containers[0].VolumeMounts)
			if tc.cloudEnv != nil {
				require.Equal(t, tc.cloudEnv, f.deployment("helmet-deployment-cloud").Spec.Template.Spec.Containers[0].Env)
			}

			svc, err := f.kube.CoreV1().Services("ns").Get(context.Background(), "helmet-cloud", metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, workerLabels("cloud"), svc.Spec.Selector)
			require.Equal(t, workerLabels("cloud"), svc.Labels)
			require.Equal(t, helmetOwnerRefs, svc.OwnerReferences)
			require.Equal(t, corev1.ServiceType(""), svc.Spec.Type, "ClusterIP by default")
			require.Equal(t, []corev1.ServicePort{{Name: "tcp-0", Protocol: corev1.ProtocolTCP, Port: 5000, TargetPort: intstr.FromInt32(5000)}},
				svc.Spec.Ports)

			ji := f.service("helmet")
			require.Equal(t, sednav1.PhaseRunning, ji.Status.Phase)
			require.Equal(t, int64(1), ji.Status.ObservedGeneration)
			require.NotNil(t, ji.Status.StartTime)
		})
	}
}

func TestRemoteModelsAreDownloadedByTheInitializer(t *testing.T) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "ns",
			Annotations: map[string]string{"s3-endpoint": "minio.local:9000", "s3-usehttps": "0"}},
		Data: map[string][]byte{"ACCESS_KEY_ID": []byte("AK"), "SECRET_ACCESS_KEY": []byte("SK")},
	}
	big := hostModel("big", "s3://models/yolo/big.pb")
	big.Spec.CredentialName = "s3-creds"
	little := hostModel("little", "https://files.example/m/little.pb")
	little.Spec.CredentialName = "s3-creds" // not needed for https: no credentials in the pod
	f := newFixture(t, "", []k8sruntime.Object{helmet(), big, little}, secret)
	f.syncAndRefresh("ns/helmet")

	cloud := f.deployment("helmet-deployment-cloud").Spec.Template.Spec
	require.Len(t, cloud.InitContainers, 1)
	initializer := cloud.InitContainers[0]
	require.Equal(t, "storage-initializer", initializer.Name)
	require.Equal(t, "kubeedge/sedna-storage-initializer:v0.7.0", initializer.Image)
	require.Equal(t, []string{"s3://models/yolo/big.pb", "/downloads/models/yolo"}, initializer.Args)
	require.Equal(t, []corev1.EnvVar{
		{Name: "S3_ENDPOINT_URL", Value: "http://minio.local:9000"},
		{Name: "ACCESS_KEY_ID", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "s3-creds"}, Key: "ACCESS_KEY_ID"}}},
		{Name: "SECRET_ACCESS_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "s3-creds"}, Key: "SECRET_ACCESS_KEY"}}},
	}, initializer.Env, "keys by reference, never literal")
	require.Equal(t, []corev1.VolumeMount{{Name: "sedna-storage-initializer", MountPath: "/downloads"}}, initializer.VolumeMounts)
	require.Equal(t, []corev1.VolumeMount{{Name: "sedna-storage-initializer", MountPath: "/downloads", ReadOnly: true}},
		cloud.Containers[0].VolumeMounts)
	require.Contains(t, cloud.Containers[0].Env, corev1.EnvVar{Name: "MODEL_URL", Value: "/downloads/models/yolo/big.pb"})
	require.Equal(t, []corev1.Volume{{Name: "sedna-storage-initializer", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		cloud.Volumes)
	for _, e := range cloud.Containers[0].Env {
		require.NotContains(t, []string{"ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "S3_ENDPOINT_URL"}, e.Name, "the worker reads only the download")
	}

	edge := f.deployment("helmet-deployment-edge").Spec.Template.Spec
	require.Len(t, edge.InitContainers, 1)
	require.Equal(t, []string{"https://files.example/m/little.pb", "/downloads/files.example/m"}, edge.InitContainers[0].Args)
	require.Empty(t, edge.InitContainers[0].Env, "http downloads need no S3 credentials")
	require.Contains(t, edge.Containers[0].Env, corev1.EnvVar{Name: "MODEL_URL", Value: "/downloads/files.example/m/little.pb"})
}

func TestMissingReferencesBlockTheChildren(t *testing.T) {
	s3Model := hostModel("little", "s3://b/little.pb")
	s3Model.Spec.CredentialName = "absent"
	tests := map[string]struct {
		objects []k8sruntime.Object
		reason  string
		message string
	}{
		"missing cloud model": {
			objects: []k8sruntime.Object{hostModel("little", "/m/l.pb")},
			reason:  "ModelNotFound", message: `model "big" of the cloud worker not found`,
		},
		"missing edge model": {
			objects: []k8sruntime.Object{hostModel("big", "/m/b.pb")},
			reason:  "ModelNotFound", message: `model "little" of the edge worker not found`,
		},
		"missing credential secret": {
			objects: []k8sruntime.Object{hostModel("big", "/m/b.pb"), s3Model},
			reason:  "CredentialNotFound", message: `secret "absent" named by model "little" of the edge worker not found`,
		},
		"model URL climbing out": {
			objects: []k8sruntime.Object{hostModel("big", "/m/../b.pb"), hostModel("little", "/m/l.pb")},
			reason:  "InvalidSpec",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, "", append([]k8sruntime.Object{helmet()}, tc.objects...))
			f.syncAndRefresh("ns/helmet")
			require.Empty(t, f.writes(), "no children while a reference is missing")
			ji := f.service("helmet")
			ready := meta.FindStatusCondition(ji.Status.Conditions, "Ready")
			require.NotNil(t, ready)
			require.Equal(t, metav1.ConditionFalse, ready.Status)
			require.Equal(t, tc.reason, ready.Reason)
			if tc.message != "" {
				require.Equal(t, tc.message, ready.Message)
			}
			require.Equal(t, int64(1), ready.ObservedGeneration)
			require.Equal(t, sednav1.PhasePending, ji.Status.Phase)
			require.Contains(t, <-f.recorder.Events, "Warning "+tc.reason)
		})
	}
}

func TestSyncIsIdempotentAndRollsOutSpecEdits(t *testing.T) {
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	f.syncAndRefresh("ns/helmet")
	require.Len(t, f.writes(), 3)

	f.syncAndRefresh("ns/helmet")
	require.Empty(t, f.writes(), "an unchanged service writes nothing")
	for _, a := range f.sedna.Actions() {
		require.Equal(t, "list", a.GetVerb(), "nor its status; the fixture's refresh lists")
	}

	ji := f.service("helmet")
	ji.Spec.EdgeWorker.Template.Spec.Containers[0].Image = "little:v2"
	ji.Generation = 2
	_, err := f.sedna.SednaV1alpha1().JointInferenceServices("ns").Update(context.Background(), ji, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.refresh()
	f.syncAndRefresh("ns/helmet")
	require.Equal(t, []string{"update deployments helmet-deployment-edge"}, f.writes())
	edge := f.deployment("helmet-deployment-edge")
	require.Equal(t, "little:v2", edge.Spec.Template.Spec.Containers[0].Image)
	require.Contains(t, edge.Spec.Template.Spec.Containers[0].Env, podNameEnv("WORKER_NAME"),
		"the worker name survives the rebuild")

	f.syncAndRefresh("ns/helmet")
	require.Empty(t, f.writes())

	// A Model moving elsewhere rolls the worker that reads it.
	moved := hostModel("big", "/elsewhere/big.pb")
	require.NoError(t, f.sednaInformers.Sedna().V1alpha1().Models().Informer().GetIndexer().Update(moved))
	f.syncAndRefresh("ns/helmet")
	require.Equal(t, []string{"update deployments helmet-deployment-cloud"}, f.writes())
	require.Contains(t, f.deployment("helmet-deployment-cloud").Spec.Template.Spec.Containers[0].Env,
		corev1.EnvVar{Name: "MODEL_URL", Value: "/home/data/elsewhere/big.pb"})

	// Someone scales a Deployment without an HPA: GM puts it back to one replica.
	d := f.deployment("helmet-deployment-edge")
	d.Spec.Replicas = ptr.To[int32](3)
	_, err = f.kube.AppsV1().Deployments("ns").Update(context.Background(), d, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.refresh()
	f.syncAndRefresh("ns/helmet")
	require.Equal(t, []string{"update deployments helmet-deployment-edge"}, f.writes())
	require.Equal(t, ptr.To[int32](1), f.deployment("helmet-deployment-edge").Spec.Replicas)
}

// drainEvents returns the Events recorded so far.
func drainEvents(f *fixture) []string {
	var events []string
	for len(f.recorder.Events) > 0 {
		events = append(events, <-f.recorder.Events)
	}
	return events
}

// TestOneEventPerSyncNamesEveryChildCreated: creating a service's three children is one Event,
// not three, so that Events never outnumber the children they describe (issue 16: at 1,000
// services, per-child Events were more API writes than the children).
func TestOneEventPerSyncNamesEveryChildCreated(t *testing.T) {
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	f.syncAndRefresh("ns/helmet")
	var created []string
	for _, e := range drainEvents(f) {
		if strings.HasPrefix(e, "Normal Created ") {
			created = append(created, e)
		}
	}
	require.Equal(t, []string{"Normal Created Created deployment helmet-deployment-cloud, deployment helmet-deployment-edge, service helmet-cloud"}, created)

	f.syncAndRefresh("ns/helmet")
	for _, e := range drainEvents(f) {
		require.NotContains(t, e, "Created", "an unchanged service records no change")
	}
}

func TestDeletedChildrenAreRecreated(t *testing.T) {
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	f.syncAndRefresh("ns/helmet")
	require.NoError(t, f.kube.AppsV1().Deployments("ns").Delete(context.Background(), "helmet-deployment-edge", metav1.DeleteOptions{}))
	require.NoError(t, f.kube.CoreV1().Services("ns").Delete(context.Background(), "helmet-cloud", metav1.DeleteOptions{}))
	f.refresh()
	f.syncAndRefresh("ns/helmet")
	require.ElementsMatch(t, []string{"create services helmet-cloud", "create deployments helmet-deployment-edge"}, f.writes())
}

func TestForeignObjectsAreNotTakenOver(t *testing.T) {
	foreign := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "helmet-deployment-cloud", Namespace: "ns"}}
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")}, foreign)
	err := f.c.sync(context.Background(), "ns/helmet")
	require.ErrorContains(t, err, "deployment ns/helmet-deployment-cloud exists and is not controlled by joint inference service helmet")
	f.refresh()
	require.Empty(t, f.deployment("helmet-deployment-cloud").OwnerReferences, "left alone")
	require.NotNil(t, f.deployment("helmet-deployment-edge"), "the other children still converge")
}

// TestForeignObjectsOutsideTheCacheAreNotTakenOver: the child caches hold only objects with the
// service's labels, so a name taken by an unlabeled object is found by the create; the object is
// then read from the API server and reported as a conflict, not mistaken for a lagging cache.
func TestForeignObjectsOutsideTheCacheAreNotTakenOver(t *testing.T) {
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	for _, obj := range []k8sruntime.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "helmet-deployment-cloud", Namespace: "ns"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "helmet-cloud", Namespace: "ns"}},
	} {
		require.NoError(t, f.kube.Tracker().Add(obj)) // in the API, not in the cache
	}
	err := f.c.sync(context.Background(), "ns/helmet")
	require.ErrorContains(t, err, "deployment ns/helmet-deployment-cloud exists and is not controlled by joint inference service helmet")
	require.ErrorContains(t, err, "service ns/helmet-cloud exists and is not controlled by joint inference service helmet")
	require.Contains(t, drainEvents(f),
		"Warning ChildConflict deployment ns/helmet-deployment-cloud exists and is not controlled by joint inference service helmet")
}

func TestHPAsFollowTheSpec(t *testing.T) {
	ji := helmet()
	ji.Spec.CloudWorker.HPA = &sednav1.HPA{MinReplicas: ptr.To[int32](1), MaxReplicas: 4, Metrics: []autoscalingv2.MetricSpec{{
		Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](60)},
		},
	}}}
	f := newFixture(t, "", []k8sruntime.Object{ji, hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	f.syncAndRefresh("ns/helmet")
	require.Contains(t, f.writes(), "create horizontalpodautoscalers hpa-helmet-deployment-cloud")
	hpa, err := f.kube.AutoscalingV2().HorizontalPodAutoscalers("ns").Get(context.Background(), "hpa-helmet-deployment-cloud", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "helmet-deployment-cloud"},
		hpa.Spec.ScaleTargetRef)
	require.Equal(t, int32(4), hpa.Spec.MaxReplicas)
	require.Equal(t, ptr.To[int32](1), hpa.Spec.MinReplicas)
	require.Equal(t, ji.Spec.CloudWorker.HPA.Metrics, hpa.Spec.Metrics)
	require.Equal(t, helmetOwnerRefs, hpa.OwnerReferences)
	require.Equal(t, workerLabels("cloud"), hpa.Labels)

	// The HPA scales the Deployment: GM leaves its replicas alone.
	d := f.deployment("helmet-deployment-cloud")
	d.Spec.Replicas = ptr.To[int32](3)
	_, err = f.kube.AppsV1().Deployments("ns").Update(context.Background(), d, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.refresh()
	f.syncAndRefresh("ns/helmet")
	require.Empty(t, f.writes())

	// Changing the HPA updates it; removing it deletes it.
	current := f.service("helmet")
	current.Spec.CloudWorker.HPA.MaxReplicas = 6
	current.Spec.EdgeWorker.HPA = &sednav1.HPA{MaxReplicas: 2}
	_, err = f.sedna.SednaV1alpha1().JointInferenceServices("ns").Update(context.Background(), current, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.refresh()
	f.syncAndRefresh("ns/helmet")
	require.ElementsMatch(t, []string{"update horizontalpodautoscalers hpa-helmet-deployment-cloud",
		"create horizontalpodautoscalers hpa-helmet-deployment-edge"}, f.writes())

	current = f.service("helmet")
	current.Spec.CloudWorker.HPA = nil
	_, err = f.sedna.SednaV1alpha1().JointInferenceServices("ns").Update(context.Background(), current, metav1.UpdateOptions{})
	require.NoError(t, err)
	f.refresh()
	f.syncAndRefresh("ns/helmet")
	require.ElementsMatch(t, []string{"delete horizontalpodautoscalers hpa-helmet-deployment-cloud",
		"update deployments helmet-deployment-cloud"}, f.writes(), "the HPA goes and the replicas come back to one")
	require.Equal(t, ptr.To[int32](1), f.deployment("helmet-deployment-cloud").Spec.Replicas)
}

func TestStatusFollowsTheWorkers(t *testing.T) {
	f := newFixture(t, "", []k8sruntime.Object{helmet(), hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	f.syncAndRefresh("ns/helmet")
	ready := func() *metav1.Condition {
		return meta.FindStatusCondition(f.service("helmet").Status.Conditions, "Ready")
	}
	require.Equal(t, "WorkersUnavailable", ready().Reason)
	require.Equal(t, "deployments helmet-deployment-cloud and helmet-deployment-edge have no available replica", ready().Message)

	f.setDeploymentStatus("helmet-deployment-cloud", appsv1.DeploymentStatus{AvailableReplicas: 1})
	f.syncAndRefresh("ns/helmet")
	require.Equal(t, "EdgeWorkerUnavailable", ready().Reason)
	require.Equal(t, "deployment helmet-deployment-edge has no available replica", ready().Message)
	require.Equal(t, int32(1), f.service("helmet").Status.Active)

	f.setDeploymentStatus("helmet-deployment-edge", appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue},
	}})
	f.syncAndRefresh("ns/helmet")
	ji := f.service("helmet")
	require.Equal(t, metav1.ConditionTrue, ready().Status)
	require.Equal(t, "WorkersAvailable", ready().Reason)
	require.Equal(t, int32(2), ji.Status.Active)
	require.Zero(t, ji.Status.Failed)
	require.Equal(t, sednav1.PhaseRunning, ji.Status.Phase)

	f.setDeploymentStatus("helmet-deployment-cloud", appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
		Message: `ReplicaSet "x" has timed out progressing.`,
	}}})
	f.syncAndRefresh("ns/helmet")
	ji = f.service("helmet")
	failed := meta.FindStatusCondition(ji.Status.Conditions, "Failed")
	require.NotNil(t, failed)
	require.Equal(t, metav1.ConditionTrue, failed.Status)
	require.Equal(t, "ProgressDeadlineExceeded", failed.Reason)
	require.Equal(t, `deployment helmet-deployment-cloud: ReplicaSet "x" has timed out progressing.`, failed.Message)
	require.Equal(t, "CloudWorkerUnavailable", ready().Reason)
	require.Equal(t, int32(1), ji.Status.Failed)
	require.Equal(t, int32(1), ji.Status.Active)
	require.Equal(t, sednav1.PhaseFailed, ji.Status.Phase)

	// Not terminal: the worker recovers, Failed goes.
	f.setDeploymentStatus("helmet-deployment-cloud", appsv1.DeploymentStatus{AvailableReplicas: 1})
	f.syncAndRefresh("ns/helmet")
	ji = f.service("helmet")
	require.Nil(t, meta.FindStatusCondition(ji.Status.Conditions, "Failed"))
	require.Equal(t, metav1.ConditionTrue, ready().Status)
	require.Equal(t, sednav1.PhaseRunning, ji.Status.Phase)
	require.Zero(t, ji.Status.Failed)

	events := drainEvents(f)
	require.Contains(t, events, `Warning WorkerFailed deployment helmet-deployment-cloud: ReplicaSet "x" has timed out progressing.`)
	require.Contains(t, events, "Normal Created Created deployment helmet-deployment-cloud, deployment helmet-deployment-edge, service helmet-cloud")
}
