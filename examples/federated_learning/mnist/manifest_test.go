package mnist_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/federated_learning/mnist/fl"
	sednav1alpha1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/client/clientset/versioned/scheme"
	"github.com/sedna-go/sedna/pkg/manifest"
)

// TestManifestDecodesStrictly decodes every document of the example's YAML into the type the
// clientset scheme registers for its kind, refusing unknown fields, and checks that the pieces fit
// together: one dataset per edge node, the model, the aggregator's policy and the images.
func TestManifestDecodesStrictly(t *testing.T) {
	data, err := os.ReadFile("mnist-federated-learning.yaml")
	require.NoError(t, err)
	objects, err := manifest.Decode(data, scheme.Scheme)
	require.NoError(t, err)
	datasets := map[string]*sednav1alpha1.Dataset{}
	models := map[string]*sednav1alpha1.Model{}
	var jobs []*sednav1alpha1.FederatedLearningJob
	for index, object := range objects {
		switch typed := object.(type) {
		case *sednav1alpha1.Dataset:
			datasets[typed.Name] = typed
		case *sednav1alpha1.Model:
			models[typed.Name] = typed
		case *sednav1alpha1.FederatedLearningJob:
			jobs = append(jobs, typed)
		default:
			t.Fatalf("document %d: unexpected kind %T", index, object)
		}
	}
	require.Len(t, jobs, 1)
	job := jobs[0]
	require.Equal(t, "false", job.Annotations["sedna.io/federated-compat"], "the example admits only its own trainers")
	require.Contains(t, models, job.Spec.AggregationWorker.Model.Name)
	require.Equal(t, "/data/mnist-fl-model/global.sflb", models[job.Spec.AggregationWorker.Model.Name].Spec.URL)

	aggregator := job.Spec.AggregationWorker.Template.Spec
	require.Equal(t, "cloud-node", aggregator.NodeName)
	require.Len(t, aggregator.Containers, 1)
	env := map[string]string{}
	for _, e := range aggregator.Containers[0].Env {
		env[e.Name] = e.Value
	}
	require.Equal(t, map[string]string{"AGG_BIND_IP": "", "exit_round": "20", "SEDNA_AGG_MIN_CLIENTS": "2", "SEDNA_AGG_ROUND_DEADLINE": "20",
		"SEDNA_AGG_EXIT_GRACE": "60", "SEDNA_AGG_SERVER_LR": "1.5", "SEDNA_AGG_SERVER_MOMENTUM": "0.7"}, env)
	cfg := fl.DefaultConfig()
	require.Equal(t, strconv.FormatFloat(cfg.ServerLR, 'g', -1, 64), env["SEDNA_AGG_SERVER_LR"], "the job and mnist-fl-measure run the same server optimizer")
	require.Equal(t, strconv.FormatFloat(cfg.ServerMomentum, 'g', -1, 64), env["SEDNA_AGG_SERVER_MOMENTUM"], "the job and mnist-fl-measure run the same server optimizer")
	require.Equal(t, fl.DefaultConfig().Rounds, 20, "the trainer's schedule and mnist-fl-measure assume 20 rounds")
	require.EqualValues(t, "OnFailure", aggregator.RestartPolicy, "a crashed aggregator restarts and resumes")

	images := imageTable(t)
	require.Contains(t, images, image(aggregator.Containers[0].Image))
	require.Len(t, job.Spec.TrainingWorkers, fl.Nodes)
	for i, worker := range job.Spec.TrainingWorkers {
		dataset := datasets[worker.Dataset.Name]
		require.NotNil(t, dataset, "training worker %d", i)
		require.Equal(t, fl.NodeName(i), dataset.Spec.NodeName)
		require.Equal(t, fl.NodeName(i), worker.Template.Spec.NodeName, "the trainer runs where its data is")
		require.Equal(t, "/data/mnist-fl/index.txt", dataset.Spec.URL)
		require.Len(t, worker.Template.Spec.Containers, 1)
		require.Contains(t, images, image(worker.Template.Spec.Containers[0].Image))
	}
	require.Len(t, datasets, fl.Nodes)
}

func image(ref string) string {
	name, _, _ := strings.Cut(ref, ":")
	return name
}

// imageTable reads hack/local-up/images.txt: image -> binary.
func imageTable(t *testing.T) map[string]string {
	f, err := os.Open(filepath.Join("..", "..", "..", "hack", "local-up", "images.txt"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	table := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 2 && !strings.HasPrefix(fields[0], "#") {
			table[fields[0]] = fields[1]
		}
	}
	require.NoError(t, scanner.Err())
	return table
}

// TestReadmeLocalSednaSteps checks the README's preparation step against the
// code it names: the command is run from the repository with go run (make
// build does not build examples), its flags exist, and its --data-dir is
// where local Sedna puts the hostPath the YAML's Datasets name.
func TestReadmeLocalSednaSteps(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	const command = "go run ./examples/federated_learning/mnist/cmd/mnist-fl-prepare --node <i> \\\n     --data-dir <root>/nodes/edge-node-<i>/host/data/mnist-fl\n"
	require.Contains(t, string(readme), command)
	main, err := os.ReadFile(filepath.Join("cmd", "mnist-fl-prepare", "main.go"))
	require.NoError(t, err)
	require.Contains(t, string(main), `flag.Int("node",`)
	require.Contains(t, string(main), `flag.String("data-dir",`)
	data, err := os.ReadFile("mnist-federated-learning.yaml")
	require.NoError(t, err)
	objects, err := manifest.Decode(data, scheme.Scheme)
	require.NoError(t, err)
	for _, object := range objects {
		if dataset, ok := object.(*sednav1alpha1.Dataset); ok {
			// The node's hostPath /data is <root>/nodes/<node>/host/data.
			require.Equal(t, "/data/mnist-fl", filepath.Dir(dataset.Spec.URL), dataset.Name)
		}
	}
	require.NotContains(t, string(readme), "   mnist-fl-prepare --node", "a bare command that make build does not build")
}
