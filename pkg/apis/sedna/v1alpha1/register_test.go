package v1alpha1

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestAddToSchemeRegistersEveryKind(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, AddToScheme(scheme))
	kinds := []string{
		"Dataset", "Model", "JointInferenceService", "IncrementalLearningJob", "FederatedLearningJob",
		"LifelongLearningJob", "ReidJob", "VideoAnalyticsJob", "FeatureExtractionService",
		"ObjectSearchService", "ObjectTrackingService",
	}
	for _, kind := range kinds {
		for _, k := range []string{kind, kind + "List"} {
			obj, err := scheme.New(SchemeGroupVersion.WithKind(k))
			require.NoError(t, err, k)
			gvks, _, err := scheme.ObjectKinds(obj)
			require.NoError(t, err, k)
			require.Equal(t, k, gvks[0].Kind)
		}
	}
	var ours int
	for _, typ := range scheme.KnownTypes(SchemeGroupVersion) {
		if typ.PkgPath() == reflect.TypeFor[Dataset]().PkgPath() {
			ours++
		}
	}
	require.Equal(t, 2*len(kinds), ours, "a kind of this package is registered that the test does not know")
}

func TestDeepCopyDoesNotShareTemplates(t *testing.T) {
	job := &IncrementalLearningJob{}
	job.Spec.TrainSpec.Template.Labels = map[string]string{"app": "a"}
	job.Status.Rounds = []LearningRound{{Round: 1, Metrics: []Metric{{Key: "acc", Value: "0.9"}}}}
	copied := job.DeepCopy()
	copied.Spec.TrainSpec.Template.Labels["app"] = "b"
	copied.Status.Rounds[0].Metrics[0].Value = "0.1"
	require.Equal(t, "a", job.Spec.TrainSpec.Template.Labels["app"])
	require.Equal(t, "0.9", job.Status.Rounds[0].Metrics[0].Value)
}
