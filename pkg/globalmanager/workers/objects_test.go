package workers

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

func testOwner() Owner {
	return Owner{Object: &sednav1.IncrementalLearningJob{ObjectMeta: metav1.ObjectMeta{Name: "Job", Namespace: "ns", UID: types.UID("u1")}},
		Kind: "IncrementalLearningJob"}
}

func TestNamesAndLabels(t *testing.T) {
	owner := testOwner()
	require.Equal(t, map[string]string{
		"incrementallearningjob.sedna.io/name": "Job", "incrementallearningjob.sedna.io/uid": "u1",
		"incrementallearningjob.sedna.io/worker-type": "train",
	}, Labels(owner, "Train"))
	require.Equal(t, map[string]string{"incrementallearningjob.sedna.io/name": "Job", "incrementallearningjob.sedna.io/uid": "u1"},
		OwnerSelector(owner))
	require.Equal(t, "Job-Train-svc", AppLabelValue(owner, "Train"))
	require.Equal(t, "Job-deployment-train", DeploymentName(owner, "Train"))
	require.Equal(t, "job-train", ServiceName(owner, "Train"))
	require.Equal(t, "job-train.ns", ServiceHost(owner, "Train"))
	require.Equal(t, "hpa-Job-deployment-train", HPAName(DeploymentName(owner, "Train")))
	require.Equal(t, []metav1.OwnerReference{{APIVersion: "sedna.io/v1alpha1", Kind: "IncrementalLearningJob", Name: "Job", UID: "u1",
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}, OwnerReferences(owner))
	require.Len(t, StableSuffix(owner, 5), 5)
	require.Equal(t, StableSuffix(owner, 5), StableSuffix(testOwner(), 5), "stable")
}

func TestNewDeploymentKeepsUserTemplateLabels(t *testing.T) {
	owner := testOwner()
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}}}
	d, err := NewDeployment(owner, "Train", ptr.To[int32](3), template)
	require.NoError(t, err)
	require.NotContains(t, template.Labels, "app.sedna.io", "input untouched")
	require.Equal(t, "a", d.Spec.Template.Labels["team"])
	require.Equal(t, "Job-Train-svc", d.Spec.Template.Labels["app.sedna.io"])
	require.Equal(t, d.Labels, d.Spec.Selector.MatchLabels)
	require.Equal(t, ptr.To[int32](3), d.Spec.Replicas)
	require.True(t, IsControlledBy(d, owner))

	again, err := NewDeployment(owner, "Train", ptr.To[int32](3), template)
	require.NoError(t, err)
	require.Equal(t, d.Annotations[SpecHashAnnotation], again.Annotations[SpecHashAnnotation], "deterministic")
	template.Spec.NodeName = "n"
	changed, err := NewDeployment(owner, "Train", ptr.To[int32](3), template)
	require.NoError(t, err)
	require.NotEqual(t, d.Annotations[SpecHashAnnotation], changed.Annotations[SpecHashAnnotation])

	one, err := NewDeployment(owner, "Train", nil, template)
	require.NoError(t, err)
	require.Equal(t, ptr.To[int32](1), one.Spec.Replicas)
}

func TestNewHPACopiesTheSpec(t *testing.T) {
	hpa, err := NewHPA(testOwner(), "Train", "d", &sednav1.HPA{MinReplicas: ptr.To[int32](2), MaxReplicas: 5})
	require.NoError(t, err)
	require.Equal(t, "hpa-d", hpa.Name)
	require.Equal(t, "d", hpa.Spec.ScaleTargetRef.Name)
	require.Equal(t, ptr.To[int32](2), hpa.Spec.MinReplicas)
	require.Equal(t, int32(5), hpa.Spec.MaxReplicas)
}

// A worker template labelled like GM's leader pod (what the gm Service selects) yields workers
// without those labels, Deployment and bare pod alike; other labels are kept.
func TestWorkersNeverCarryGMsLabels(t *testing.T) {
	owner := testOwner()
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
		"sedna.io/gm-role": "leader", "app.kubernetes.io/name": "sedna-gm", "team": "a",
	}}}
	d, err := NewDeployment(owner, "Train", nil, template)
	require.NoError(t, err)
	pod, err := NewPod(owner, "Train", "Job-train-1", template, nil)
	require.NoError(t, err)
	for name, labels := range map[string]map[string]string{"deployment template": d.Spec.Template.Labels, "pod": pod.Labels} {
		require.NotContains(t, labels, "sedna.io/gm-role", name)
		require.NotContains(t, labels, "app.kubernetes.io/name", name)
		require.Equal(t, "a", labels["team"], name)
	}
	require.Equal(t, "leader", template.Labels["sedna.io/gm-role"], "input untouched")
	// Another app name is the user's own and is kept.
	template.Labels["app.kubernetes.io/name"] = "my-trainer"
	pod, err = NewPod(owner, "Train", "Job-train-1", template, nil)
	require.NoError(t, err)
	require.Equal(t, "my-trainer", pod.Labels["app.kubernetes.io/name"])
}
