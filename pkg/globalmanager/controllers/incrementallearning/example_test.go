package incrementallearning

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/client/clientset/versioned/scheme"
	"github.com/sedna-go/sedna/pkg/manifest"
)

// TestUpstreamHelmetExampleGivesTheLibraryItsEnv checks that the workers built from upstream's
// incremental learning helmet detection example carry every variable upstream's Python library
// reads for incremental learning, with the values it needs.
func TestUpstreamHelmetExampleGivesTheLibraryItsEnv(t *testing.T) {
	data, err := os.ReadFile("testdata/helmet-detection-incremental.yaml")
	require.NoError(t, err)
	objs, err := manifest.Decode(data, scheme.Scheme)
	require.NoError(t, err)
	for _, obj := range objs {
		obj.(interface{ SetNamespace(string) }).SetNamespace("ns")
	}
	require.Len(t, objs, 4)
	job := objs[3].(*sednav1.IncrementalLearningJob)
	job.UID, job.ResourceVersion, job.Generation = types.UID("uid-1"), "5", 1
	f := newFixture(t, objs)
	key := "ns/helmet-detection-demo"
	f.sync(key)
	_, nodes := f.published2(job.Name)
	require.Equal(t, []string{"edge-node"}, nodes)

	f.reportTo(job.Name, map[string]any{"phase": "Train", "status": "Ready", "round": 1, "input": map[string]any{
		"models": []map[string]any{{"format": "ckpt", "url": "/models/base_model"}}, "dataURL": "/output/data/train/1/data.txt", "outputDir": "/output/train/1",
	}})
	f.sync(key)
	f.reportTo(job.Name, map[string]any{"phase": "Train", "status": "Completed", "round": 1})
	f.reportTo(job.Name, map[string]any{"phase": "Eval", "status": "Ready", "round": 1, "input": map[string]any{
		"models":  []map[string]any{{"format": "ckpt", "url": "/output/train/1/model"}, {"format": "pb", "url": "/models/deploy_model/saved_model.pb"}},
		"dataURL": "/output/data/eval/1/data.txt",
	}})
	f.sync(key)

	common := []string{"NAMESPACE", "JOB_NAME", "WORKER_NAME", "LC_SERVER", "DATA_PATH_PREFIX"}
	for pod, wanted := range map[string][]string{
		"helmet-detection-demo-train-1": {"BASE_MODEL_URL", "MODEL_URL", "TRAIN_DATASET_URL", "ORIGINAL_DATASET_URL", "batch_size", "epochs"},
		"helmet-detection-demo-eval-1":  {"MODEL_URLS", "TEST_DATASET_URL", "ORIGINAL_DATASET_URL"},
	} {
		env := envOf(f.pod(pod).Spec.Containers[0])
		for _, name := range append(common, wanted...) {
			require.Contains(t, env, name, "%s lacks %s", pod, name)
		}
		require.Equal(t, "ns", env["NAMESPACE"].Value)
		require.Equal(t, "helmet-detection-demo", env["JOB_NAME"].Value)
		require.Equal(t, "/home/data", env["DATA_PATH_PREFIX"].Value)
	}
	train := envOf(f.pod("helmet-detection-demo-train-1").Spec.Containers[0])
	require.Equal(t, "/home/data/models/base_model", train["BASE_MODEL_URL"].Value)
	require.Equal(t, "/home/data/output/train/1", train["MODEL_URL"].Value)
	require.Equal(t, "/home/data/data/helmet_detection/train_data/train_data.txt", train["ORIGINAL_DATASET_URL"].Value)

	infer := f.deployment("helmet-detection-demo-deployment-inference").Spec.Template.Spec
	env := envOf(infer.Containers[0])
	for _, name := range append(common, "HEM_NAME", "HEM_PARAMETERS", "MODEL_URL", "MODEL_HOT_UPDATE", "MODEL_POLL_PERIOD_SECONDS",
		"MODEL_HOT_UPDATE_CONFIG", "input_shape", "video_url", "HE_SAVED_URL") {
		require.Contains(t, env, name, "the inference worker lacks %s", name)
	}
	require.Equal(t, `[{"key":"threshold_img","value":"0.9"},{"key":"threshold_box","value":"0.9"}]`, env["HEM_PARAMETERS"].Value)
	require.Equal(t, "/home/data/models/deploy_model/saved_model.pb", env["MODEL_URL"].Value)
	require.Equal(t, "60", env["MODEL_POLL_PERIOD_SECONDS"].Value)
	var volumes []string
	for _, v := range infer.Volumes {
		volumes = append(volumes, v.Name)
	}
	require.ElementsMatch(t, []string{"localvideo", "hedir", "sedna-model-hot-update-volume", "models-deploy-model"}, volumes)
	require.Equal(t, corev1.RestartPolicy(""), infer.RestartPolicy, "a Deployment's pods keep Always")
}

func (f *fixture) published2(name string) (string, []string) {
	s := f.downstream.published[runtimeKey(name)]
	return string(s.object), s.nodes
}
