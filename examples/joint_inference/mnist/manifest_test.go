package mnist_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	sednav1alpha1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/client/clientset/versioned/scheme"
	"github.com/sedna-go/sedna/pkg/manifest"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
)

// TestManifestDecodesStrictly decodes every document of the example's YAML
// into the type the clientset scheme registers for its kind, refusing
// unknown fields, and checks that the pieces fit together.
func TestManifestDecodesStrictly(t *testing.T) {
	data, err := os.ReadFile("mnist-joint-inference.yaml")
	require.NoError(t, err)
	models := map[string]*sednav1alpha1.Model{}
	var services []*sednav1alpha1.JointInferenceService
	objects, err := manifest.Decode(data, scheme.Scheme)
	require.NoError(t, err)
	for index, object := range objects {
		switch typed := object.(type) {
		case *sednav1alpha1.Model:
			models[typed.Name] = typed
		case *sednav1alpha1.JointInferenceService:
			services = append(services, typed)
		default:
			t.Fatalf("document %d: unexpected kind %T", index, object)
		}
	}
	require.Len(t, models, 2)
	require.Len(t, services, 1)
	for name, model := range models {
		require.Regexp(t, `^/data/mnist/models/(edge|cloud)\.model$`, model.Spec.URL, name)
	}

	service := services[0]
	edge, cloud := service.Spec.EdgeWorker, service.Spec.CloudWorker
	require.Contains(t, models, edge.Model.Name)
	require.Contains(t, models, cloud.Model.Name)
	require.Equal(t, "/data/mnist/models/edge.model", models[edge.Model.Name].Spec.URL)
	require.Equal(t, "/data/mnist/models/cloud.model", models[cloud.Model.Name].Spec.URL)
	require.Equal(t, "edge-node-1", edge.Template.Spec.NodeName)
	require.Equal(t, "cloud-node", cloud.Template.Spec.NodeName)
	require.Equal(t, "sedna-example/mnist-edge:v0.1", onlyContainer(t, edge.Template.Spec).Image)
	require.Equal(t, "sedna-example/mnist-cloud:v0.1", onlyContainer(t, cloud.Template.Spec).Image)

	// The mining algorithm and parameters are the ones the edge worker will
	// build from HEM_NAME and HEM_PARAMETERS.
	params := map[string]string{}
	for _, p := range edge.HardExampleMining.Parameters {
		params[p.Key] = p.Value
	}
	_, err = hem.NewRegistry().New(edge.HardExampleMining.Name, params)
	require.NoError(t, err)

	// LC_PERIOD, if set, must parse as the worker reads it.
	for _, variable := range onlyContainer(t, edge.Template.Spec).Env {
		if variable.Name == env.LCPeriod {
			_, err := env.New(env.MapLookup(map[string]string{env.LCPeriod: variable.Value})).LCPeriod()
			require.NoError(t, err)
		}
	}
}

func onlyContainer(t *testing.T, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	require.Len(t, spec.Containers, 1)
	return spec.Containers[0]
}
