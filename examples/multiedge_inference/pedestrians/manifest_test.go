package pedestrians_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	sednav1alpha1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/manifest"
	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

// imageTable reads hack/local-up/images.txt: image -> binary.
func imageTable(t *testing.T) map[string]string {
	file, err := os.Open(filepath.Join("..", "..", "..", "hack", "local-up", "images.txt"))
	require.NoError(t, err)
	defer func() { _ = file.Close() }()
	table := map[string]string{}
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 2 && !strings.HasPrefix(fields[0], "#") {
			table[fields[0]] = fields[1]
		}
	}
	return table
}

type placedPod struct {
	owner string
	spec  corev1.PodSpec
}

// TestManifest decodes every document of the example strictly and checks that the pieces fit: all
// five kinds, no Secret (the user creates the pipeline token's), images the process nodes know,
// the pipeline token in every container, environment
// references to earlier variables only, and no two servers on one node (whose IP the pods
// share here) on the same port.
func TestManifest(t *testing.T) {
	data, err := os.ReadFile("pedestrians.yaml")
	require.NoError(t, err)
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, sednav1alpha1.AddToScheme(scheme))
	objects, err := manifest.Decode(data, scheme)
	require.NoError(t, err)

	kinds := map[string]int{}
	models := map[string]bool{}
	var pods []placedPod
	for _, object := range objects {
		switch typed := object.(type) {
		case *corev1.Secret:
			t.Fatalf("Secret %s is in the example: a token published with it is known to everyone, and applying the file would overwrite the user's own", typed.Name)
		case *sednav1alpha1.Model:
			kinds["Model"]++
			models[typed.Name] = true
		case *sednav1alpha1.FeatureExtractionService:
			kinds["FeatureExtractionService"]++
			require.Equal(t, "feature-extraction", typed.Name, "the workers' default FE host is feature-extraction-fe")
			require.True(t, models[typed.Spec.Model.Name])
			pods = append(pods, placedPod{typed.Name, typed.Spec.Template.Spec})
		case *sednav1alpha1.ReidJob:
			kinds["ReidJob"]++
			require.Equal(t, "reid", typed.Name)
			pods = append(pods, placedPod{typed.Name, typed.Spec.Template.Spec})
		case *sednav1alpha1.VideoAnalyticsJob:
			kinds["VideoAnalyticsJob"]++
			require.True(t, models[typed.Spec.Model.Name])
			require.False(t, typed.Spec.KafkaSupport)
			pods = append(pods, placedPod{typed.Name, typed.Spec.Template.Spec})
		case *sednav1alpha1.ObjectSearchService:
			kinds["ObjectSearchService"]++
			pods = append(pods, placedPod{typed.Name + "/user", typed.Spec.UserWorker.Template.Spec}, placedPod{typed.Name + "/reid", typed.Spec.ReidWorkers.Template.Spec})
			for _, worker := range typed.Spec.TrackingWorkers {
				pods = append(pods, placedPod{typed.Name + "/tracking", worker.Template.Spec})
			}
		case *sednav1alpha1.ObjectTrackingService:
			kinds["ObjectTrackingService"]++
			pods = append(pods, placedPod{typed.Name + "/reid", typed.Spec.ReidWorkers.Template.Spec})
			for _, worker := range typed.Spec.TrackingWorkers {
				pods = append(pods, placedPod{typed.Name + "/tracking", worker.Template.Spec})
			}
		default:
			t.Fatalf("unexpected object %T", object)
		}
	}
	require.Equal(t, map[string]int{
		"Model": 2, "FeatureExtractionService": 1, "ReidJob": 1,
		"VideoAnalyticsJob": 3, "ObjectSearchService": 1, "ObjectTrackingService": 1,
	}, kinds)

	images := imageTable(t)
	reference := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	ports := map[string]string{}
	for _, pod := range pods {
		require.NotEmpty(t, pod.spec.NodeName, pod.owner)
		require.Len(t, pod.spec.Containers, 1, pod.owner)
		container := pod.spec.Containers[0]
		image, _, _ := strings.Cut(container.Image, ":")
		require.Contains(t, images, image, "%s: image %s is not in images.txt", pod.owner, container.Image)
		defined := map[string]bool{}
		for _, variable := range container.Env {
			for _, match := range reference.FindAllStringSubmatch(variable.Value, -1) {
				require.True(t, defined[match[1]], "%s: %s refers to $(%s) before it is defined", pod.owner, variable.Name, match[1])
			}
			defined[variable.Name] = true
			if variable.Name == multiedge.EnvToken {
				require.NotNil(t, variable.ValueFrom.SecretKeyRef, pod.owner)
				require.Equal(t, "pedestrians-pipeline-token", variable.ValueFrom.SecretKeyRef.Name)
			}
		}
		require.True(t, defined[multiedge.EnvToken], "%s has no pipeline token", pod.owner)
		for _, port := range container.Ports {
			key := pod.spec.NodeName + ":" + strconv.Itoa(int(port.ContainerPort))
			require.NotContains(t, ports, key, "%s and %s both listen on %s", ports[key], pod.owner, key)
			ports[key] = pod.owner
		}
	}
}
