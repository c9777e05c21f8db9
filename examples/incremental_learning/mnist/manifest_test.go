package mnist_test

import (
	"os"
	"path"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	sednav1alpha1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/client/clientset/versioned/scheme"
	"github.com/sedna-go/sedna/pkg/localcontroller/trigger"
	"github.com/sedna-go/sedna/pkg/manifest"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
)

// TestManifestDecodesStrictly decodes every document of the example's YAML into the type the
// clientset scheme registers for its kind, refusing unknown fields, and checks that the pieces fit
// together: names, node, images, paths, triggers and the miner.
func TestManifestDecodesStrictly(t *testing.T) {
	data, err := os.ReadFile("mnist-incremental-learning.yaml")
	require.NoError(t, err)
	models := map[string]*sednav1alpha1.Model{}
	datasets := map[string]*sednav1alpha1.Dataset{}
	var jobs []*sednav1alpha1.IncrementalLearningJob
	objects, err := manifest.Decode(data, scheme.Scheme)
	require.NoError(t, err)
	for index, object := range objects {
		switch typed := object.(type) {
		case *sednav1alpha1.Model:
			models[typed.Name] = typed
		case *sednav1alpha1.Dataset:
			datasets[typed.Name] = typed
		case *sednav1alpha1.IncrementalLearningJob:
			jobs = append(jobs, typed)
		default:
			t.Fatalf("document %d: unexpected kind %T", index, object)
		}
	}
	require.Len(t, models, 2)
	require.Len(t, datasets, 1)
	require.Len(t, jobs, 1)
	job := jobs[0].Spec

	dataset := datasets[job.Dataset.Name]
	require.NotNil(t, dataset)
	require.Equal(t, "/data/mnist-il/index.txt", dataset.Spec.URL)
	require.Equal(t, "txt", dataset.Spec.Format)
	require.Equal(t, "edge-node-1", dataset.Spec.NodeName)
	require.Equal(t, 0.8, job.Dataset.TrainProb)
	require.Equal(t, "/data/mnist-il/output", job.OutputDir)

	require.Contains(t, models, job.InitialModel.Name)
	require.Contains(t, models, job.DeploySpec.Model.Name)
	require.Equal(t, "/data/mnist-il/models/initial/"+il.ModelFile, models[job.InitialModel.Name].Spec.URL)
	require.Equal(t, "/data/mnist-il/models/deploy/"+il.ModelFile, models[job.DeploySpec.Model.Name].Spec.URL)
	for _, m := range models {
		require.Equal(t, il.ModelFormat, m.Spec.Format)
	}
	require.True(t, job.DeploySpec.Model.HotUpdateEnabled)
	require.GreaterOrEqual(t, job.DeploySpec.Model.PollPeriodSeconds, int64(1))

	for stage, tc := range map[string]struct {
		spec  corev1.PodSpec
		image string
	}{
		"train":  {job.TrainSpec.Template.Spec, "sedna-example/mnist-il-train:v0.1"},
		"eval":   {job.EvalSpec.Template.Spec, "sedna-example/mnist-il-eval:v0.1"},
		"deploy": {job.DeploySpec.Template.Spec, "sedna-example/mnist-il-infer:v0.1"},
	} {
		require.Equal(t, "edge-node-1", tc.spec.NodeName, stage)
		require.Len(t, tc.spec.Containers, 1, stage)
		container := tc.spec.Containers[0]
		require.Equal(t, tc.image, container.Image, stage)
		// Every env path the worker reads is a mount of a hostPath below /data/mnist-il.
		for _, variable := range container.Env {
			if variable.Name != "DATASET_DIR" && variable.Name != "HARD_EXAMPLES_DIR" {
				continue
			}
			mounted := false
			for _, mount := range container.VolumeMounts {
				if mount.MountPath != variable.Value {
					continue
				}
				for _, volume := range tc.spec.Volumes {
					if volume.Name == mount.Name {
						require.NotNil(t, volume.HostPath, stage)
						want := map[string]string{"DATASET_DIR": path.Dir(dataset.Spec.URL), "HARD_EXAMPLES_DIR": path.Dir(dataset.Spec.URL) + "/hard-examples"}[variable.Name]
						require.Equal(t, want, volume.HostPath.Path, stage)
						mounted = true
					}
				}
			}
			require.True(t, mounted, "%s: %s=%s is not a hostPath mount", stage, variable.Name, variable.Value)
		}
	}

	// The triggers are ones the LC builds and fires on the numbers the example produces.
	train, err := trigger.New(job.TrainSpec.Trigger)
	require.NoError(t, err)
	fired, err := train.Evaluate(fixedNoon(), map[string]any{"num_of_samples": 214})
	require.NoError(t, err)
	require.True(t, fired.Fired, "round 3 of the README's table has 214 new training samples")
	deploy, err := trigger.New(job.DeploySpec.Trigger)
	require.NoError(t, err)
	for delta, want := range map[float64]bool{0.02: true, 0: false, -0.01: false} {
		result, err := deploy.Evaluate(fixedNoon(), map[string]any{"accuracy": []float64{0.8}, "accuracy_delta": []float64{delta}})
		require.NoError(t, err)
		require.Equal(t, want, result.Fired, "accuracy_delta %v", delta)
	}

	params := map[string]string{}
	for _, p := range job.DeploySpec.HardExampleMining.Parameters {
		params[p.Key] = p.Value
	}
	_, err = hem.NewRegistry().New(job.DeploySpec.HardExampleMining.Name, params)
	require.NoError(t, err)
}

func fixedNoon() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }
