package mnist_test

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	sednav1alpha1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/client/clientset/versioned/scheme"
	"github.com/sedna-go/sedna/pkg/localcontroller/trigger"
	"github.com/sedna-go/sedna/pkg/manifest"
	"github.com/sedna-go/sedna/test/processnode"
)

// TestManifestDecodesStrictly decodes the example's YAML strictly and checks that its pieces fit:
// the Dataset is the csv mnist-ll-drive init writes, every stage runs on that node with an image
// local Sedna maps to this example's binaries, DATASET_DIR and MNIST_DIR are read-only hostPath
// mounts of the Dataset's directory, and the train trigger fires on the first task's rows.
func TestManifestDecodesStrictly(t *testing.T) {
	data, err := os.ReadFile("mnist-lifelong-learning.yaml")
	require.NoError(t, err)
	objects, err := manifest.Decode(data, scheme.Scheme)
	require.NoError(t, err)
	require.Len(t, objects, 2)
	dataset, ok := objects[0].(*sednav1alpha1.Dataset)
	require.True(t, ok, "%T", objects[0])
	job, ok := objects[1].(*sednav1alpha1.LifelongLearningJob)
	require.True(t, ok, "%T", objects[1])
	require.Equal(t, dataset.Name, job.Spec.Dataset.Name)
	require.Equal(t, "csv", dataset.Spec.Format)
	require.Equal(t, "/data/mnist-ll/dataset.csv", dataset.Spec.URL)
	require.Equal(t, "edge-node-1", dataset.Spec.NodeName)
	datasetDir := path.Dir(dataset.Spec.URL)
	require.True(t, strings.HasPrefix(job.Spec.OutputDir, datasetDir+"/"), "the output (unseen/) is below the dataset directory, which labelled rows refer to")

	images, err := processnode.LoadImageTable(filepath.Join("..", "..", "..", "hack", "local-up", "images.txt"), "/bin")
	require.NoError(t, err)
	for stage, tc := range map[string]struct {
		spec   corev1.PodSpec
		binary string
		mounts []string
	}{
		"train":  {job.Spec.TrainSpec.Template.Spec, "mnist-ll-train", []string{"DATASET_DIR", "MNIST_DIR"}},
		"eval":   {job.Spec.EvalSpec.Template.Spec, "mnist-ll-eval", []string{"DATASET_DIR", "MNIST_DIR"}},
		"deploy": {job.Spec.DeploySpec.Template.Spec, "mnist-ll-infer", nil},
	} {
		require.Equal(t, dataset.Spec.NodeName, tc.spec.NodeName, stage)
		require.Len(t, tc.spec.Containers, 1, stage)
		container := tc.spec.Containers[0]
		binary, err := images.Binary(container.Image)
		require.NoError(t, err, stage)
		require.Equal(t, "/bin/"+tc.binary, binary, stage)
		env := map[string]string{}
		for _, variable := range container.Env {
			env[variable.Name] = variable.Value
		}
		for _, name := range tc.mounts {
			value := env[name]
			require.NotEmpty(t, value, "%s: %s", stage, name)
			var found bool
			for _, mount := range container.VolumeMounts {
				rel, err := filepath.Rel(mount.MountPath, value)
				if err != nil || strings.HasPrefix(rel, "..") {
					continue
				}
				require.True(t, mount.ReadOnly, "%s: %s", stage, name)
				for _, volume := range tc.spec.Volumes {
					if volume.Name == mount.Name {
						require.NotNil(t, volume.HostPath, stage)
						require.Equal(t, datasetDir, volume.HostPath.Path, stage)
						found = true
					}
				}
			}
			require.True(t, found, "%s: %s=%s is not on a hostPath mount of the dataset directory", stage, name, value)
		}
	}

	train, err := trigger.New(job.Spec.TrainSpec.Trigger)
	require.NoError(t, err)
	noon := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for samples, want := range map[int]bool{1200: true, 500: false} {
		fired, err := train.Evaluate(noon, map[string]any{"num_of_samples": samples})
		require.NoError(t, err)
		require.Equal(t, want, fired.Fired, "%d samples", samples)
	}
}
