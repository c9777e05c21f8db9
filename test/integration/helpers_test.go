package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// kindCase describes one Sedna kind for table tests: its fixture, its resource, its Go spec type
// and the printer columns `kubectl get` must show.
type kindCase struct {
	kind    string
	plural  string
	fixture string
	spec    any // a pointer to the zero spec of the kind's Go type
	columns []string
	// noTemplate: the kind embeds no pod template.
	noTemplate bool
}

var kindCases = []kindCase{
	{kind: "Dataset", plural: "datasets", fixture: "dataset.yaml", spec: &sednav1.DatasetSpec{},
		columns: []string{"Name", "Node", "Format", "Samples", "Age"}, noTemplate: true},
	{kind: "Model", plural: "models", fixture: "model.yaml", spec: &sednav1.ModelSpec{},
		columns: []string{"Name", "Format", "URL", "Updated", "Age"}, noTemplate: true},
	{kind: "JointInferenceService", plural: "jointinferenceservices", fixture: "jointinferenceservice.yaml",
		spec: &sednav1.JointInferenceServiceSpec{}, columns: []string{"Name", "Phase", "Active", "Failed", "Edge Node", "Age"}},
	{kind: "IncrementalLearningJob", plural: "incrementallearningjobs", fixture: "incrementallearningjob.yaml",
		spec: &sednav1.ILJobSpec{}, columns: []string{"Name", "Round", "Stage", "State", "Metrics", "Age"}},
	{kind: "FederatedLearningJob", plural: "federatedlearningjobs", fixture: "federatedlearningjob.yaml",
		spec: &sednav1.FLJobSpec{}, columns: []string{"Name", "Phase", "Round", "Active", "Succeeded", "Metrics", "Age"}},
	{kind: "LifelongLearningJob", plural: "lifelonglearningjobs", fixture: "lifelonglearningjob.yaml",
		spec: &sednav1.LLJobSpec{}, columns: []string{"Name", "Round", "Stage", "State", "Models", "Age"}},
	{kind: "ReidJob", plural: "reidjobs", fixture: "reidjob.yaml", spec: &sednav1.ReidJobSpec{},
		columns: []string{"Name", "Phase", "Active", "Succeeded", "Failed", "Age"}},
	{kind: "VideoAnalyticsJob", plural: "videoanalyticsjobs", fixture: "videoanalyticsjob.yaml",
		spec: &sednav1.VideoAnalyticsJobSpec{}, columns: []string{"Name", "Phase", "Active", "Succeeded", "Failed", "Age"}},
	{kind: "FeatureExtractionService", plural: "featureextractionservices", fixture: "featureextractionservice.yaml",
		spec: &sednav1.FeatureExtractionServiceSpec{}, columns: []string{"Name", "Phase", "Ready", "Active", "Replicas", "Age"}},
	{kind: "ObjectSearchService", plural: "objectsearchservices", fixture: "objectsearchservice.yaml",
		spec: &sednav1.ObjectSearchServiceSpec{}, columns: []string{"Name", "Phase", "Ready", "Active", "Failed", "Age"}},
	{kind: "ObjectTrackingService", plural: "objecttrackingservices", fixture: "objecttrackingservice.yaml",
		spec: &sednav1.ObjectTrackingServiceSpec{}, columns: []string{"Name", "Phase", "Ready", "Active", "Failed", "Age"}},
}

func (k kindCase) gvr() schema.GroupVersionResource {
	return sednav1.SchemeGroupVersion.WithResource(k.plural)
}

// loadFixture reads testdata/<fixture> as an unstructured object.
func loadFixture(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	jsonData, err := yaml.YAMLToJSON(data)
	require.NoError(t, err, "fixture %s is not valid YAML", name)
	obj := &unstructured.Unstructured{}
	require.NoError(t, obj.UnmarshalJSON(jsonData), "fixture %s", name)
	return obj
}

// newNamespace creates a namespace for one test and deletes it when the test ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "it-"}}
	created, err := controlPlane.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		// envtest runs no namespace controller, so deletion only marks the namespace; that is enough
		// to keep tests apart.
		err := controlPlane.Kube.CoreV1().Namespaces().Delete(context.Background(), created.Name, metav1.DeleteOptions{})
		if err != nil {
			t.Logf("deleting namespace %s: %v", created.Name, err)
		}
	})
	return created.Name
}

// strictDecode decodes JSON into out and fails on any field out's type does not have.
func strictDecode(data []byte, out any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// missingFields lists the JSON paths of fields of Sedna's own API structs (recursively) that value
// does not set. Fields whose types come from k8s.io are required to be present but are not
// descended into.
func missingFields(typ reflect.Type, value any, path string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Slice:
		list, ok := value.([]any)
		if !ok || len(list) == 0 {
			return []string{path + " (empty list)"}
		}
		if typ.Elem().PkgPath() != reflect.TypeFor[sednav1.Dataset]().PkgPath() {
			return nil
		}
		var missing []string
		for i, item := range list {
			missing = append(missing, missingFields(typ.Elem(), item, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return missing
	case reflect.Struct:
		if typ.PkgPath() != reflect.TypeFor[sednav1.Dataset]().PkgPath() {
			return nil
		}
		fields, ok := value.(map[string]any)
		if !ok {
			return []string{path + " (not an object)"}
		}
		var missing []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" { // inlined
				if f.Type.PkgPath() == typ.PkgPath() {
					missing = append(missing, missingFields(f.Type, fields, path)...)
					continue
				}
				// Inlined Kubernetes struct: each of its fields must be set.
				for j := range f.Type.NumField() {
					inner, _, _ := strings.Cut(f.Type.Field(j).Tag.Get("json"), ",")
					if _, ok := fields[inner]; !ok && inner != "" && !optionalInlined[inner] {
						missing = append(missing, path+"."+inner)
					}
				}
				continue
			}
			child, ok := fields[name]
			if !ok {
				missing = append(missing, path+"."+name)
				continue
			}
			missing = append(missing, missingFields(f.Type, child, path+"."+name)...)
		}
		return missing
	default:
		return nil
	}
}

// optionalInlined are fields of inlined batch/v1 JobSpec that upstream Sedna ignores and whose
// values would conflict with fields the fixtures set (completionMode NonIndexed vs per-index
// limits) or that name a foreign controller or scheduler.
var optionalInlined = map[string]bool{
	"backoffLimitPerIndex": true, "maxFailedIndexes": true, "podFailurePolicy": true,
	"successPolicy": true, "managedBy": true, "scheduling": true, "failedPodsLimit": true,
}

// subsetDiff returns the paths where want (a fixture) is not contained in got (what the server
// returned): every key of want must be in got with an equal value; got may have more (defaults).
func subsetDiff(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %T", path, got)}
		}
		var diffs []string
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: dropped", path, k))
				continue
			}
			diffs = append(diffs, subsetDiff(v, gv, path+"."+k)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %d items, got %v", path, len(w), got)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, subsetDiff(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: want %v, got %v", path, want, got)}
		}
		return nil
	}
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }
