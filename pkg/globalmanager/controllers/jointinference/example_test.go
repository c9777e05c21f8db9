package jointinference

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/client/clientset/versioned/scheme"
	"github.com/sedna-go/sedna/pkg/manifest"
)

// decodeExample reads a multi-document YAML file of Sedna objects with the generated scheme, as
// kubectl would send them.
func decodeExample(t *testing.T, file string) []k8sruntime.Object {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	objects, err := manifest.Decode(data, scheme.Scheme)
	require.NoError(t, err)
	return objects
}

// TestUpstreamHelmetExampleGivesTheLibraryItsEnv checks that the pods built from upstream's
// helmet detection example carry every variable upstream's Python library reads for joint
// inference, with the values it needs.
func TestUpstreamHelmetExampleGivesTheLibraryItsEnv(t *testing.T) {
	objects := decodeExample(t, "testdata/helmet-detection-inference.yaml")
	require.Len(t, objects, 3)
	ji := objects[2].(*sednav1.JointInferenceService)
	ji.Namespace = "ns" // the fixture's namespace
	ji.UID = types.UID("uid-1")
	ji.ResourceVersion = "1" // as the API server would have it
	for _, obj := range objects[:2] {
		obj.(*sednav1.Model).Namespace = "ns"
	}
	f := newFixture(t, "http://localhost:9100", objects)
	f.syncAndRefresh("ns/" + ji.Name)

	envOf := func(deployment string) map[string]corev1.EnvVar {
		containers := f.deployment(deployment).Spec.Template.Spec.Containers
		require.Len(t, containers, 1)
		env := map[string]corev1.EnvVar{}
		for _, e := range containers[0].Env {
			env[e.Name] = e // later wins, as in the kubelet
		}
		return env
	}
	value := func(env map[string]corev1.EnvVar, name string) string {
		e, ok := env[name]
		require.True(t, ok, "%s is set", name)
		return e.Value
	}
	name := "helmet-detection-inference-example"

	cloud := envOf(name + "-deployment-cloud")
	require.Equal(t, "5000", value(cloud, "BIG_MODEL_BIND_PORT"))
	require.Equal(t, "/home/data/data/big-model/yolov3_darknet.pb", value(cloud, "MODEL_URL"))
	require.Equal(t, "ns", value(cloud, "NAMESPACE"))
	require.Equal(t, name, value(cloud, "SERVICE_NAME"))
	require.Equal(t, name, value(cloud, "JOB_NAME"), "the predict path is /<JOB_NAME>/predict on both sides")
	require.Equal(t, "cloudworker-4a49a", value(cloud, "WORKER_NAME"))
	require.Equal(t, "/home/data", value(cloud, "DATA_PATH_PREFIX"))
	require.Equal(t, "544,544", value(cloud, "input_shape"), "user env kept")

	edge := envOf(name + "-deployment-edge")
	require.Equal(t, name+"-cloud.ns", value(edge, "BIG_MODEL_IP"))
	require.Equal(t, "5000", value(edge, "BIG_MODEL_PORT"))
	require.Equal(t, "IBT", value(edge, "HEM_NAME"))
	require.JSONEq(t, `[{"key":"threshold_img","value":"0.9"},{"key":"threshold_box","value":"0.9"}]`, value(edge, "HEM_PARAMETERS"))
	require.Equal(t, "http://$(SEDNA_HOST_IP):9100", value(edge, "LC_SERVER"))
	require.Equal(t, "status.hostIP", edge["SEDNA_HOST_IP"].ValueFrom.FieldRef.FieldPath)
	require.Equal(t, "/home/data/data/little-model/yolov3_resnet18.pb", value(edge, "MODEL_URL"))
	require.Equal(t, "ns", value(edge, "NAMESPACE"))
	require.Equal(t, name, value(edge, "SERVICE_NAME"))
	require.Equal(t, name, value(edge, "JOB_NAME"))
	require.Equal(t, "metadata.name", edge["WORKER_NAME"].ValueFrom.FieldRef.FieldPath, "each edge replica reports as its pod")
	require.Equal(t, "helmet-detection-inference-example-jointinferenceservice-worker-token", edge["SEDNA_WORKER_TOKEN"].ValueFrom.SecretKeyRef.Name)
	require.Equal(t, "rtsp://localhost/video", value(edge, "video_url"))

	spec := f.deployment(name + "-deployment-edge").Spec.Template.Spec
	require.Equal(t, "edge-node-1", spec.NodeName)
	require.Equal(t, []string{"outputdir", "data-little-model"}, []string{spec.Volumes[0].Name, spec.Volumes[1].Name},
		"the user's volume first, then the model's directory")
	require.Equal(t, "/data/little-model", spec.Volumes[1].HostPath.Path)
	require.Equal(t, "cloud-node-1", f.deployment(name+"-deployment-cloud").Spec.Template.Spec.NodeName)
}
