package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/client/clientset/versioned/scheme"
	"github.com/sedna-go/sedna/pkg/localcontroller/trigger"
)

const upstreamFixtureDir = "testdata/upstream"

// upstreamFixture is one of upstream Sedna's samples or examples, as testdata/upstream holds it.
type upstreamFixture struct {
	// kinds are the kinds of the file's documents, in order.
	kinds []string
	// transmitter is what Transmitter.Effective must make of the file's FederatedLearningJob.
	transmitter sednav1.TransmitterKind
}

// upstreamFixtures is every sedna.io object of upstream's build/crd-samples/sedna and examples
// (UPSTREAM-CONTRACT.md §7), one entry per file of testdata/upstream.
var upstreamFixtures = map[string]upstreamFixture{
	"sample-dataset.yaml":                       {kinds: []string{"Dataset"}},
	"sample-model.yaml":                         {kinds: []string{"Model"}},
	"sample-jointinferenceservice.yaml":         {kinds: []string{"JointInferenceService"}},
	"sample-incrementallearningjob.yaml":        {kinds: []string{"IncrementalLearningJob"}},
	"sample-lifelonglearningjob.yaml":           {kinds: []string{"LifelongLearningJob"}},
	"sample-federatedlearningjob.yaml":          {kinds: []string{"FederatedLearningJob"}, transmitter: sednav1.TransmitterWS},
	"sample-federatedlearningjob-v1alpha2.yaml": {kinds: []string{"FederatedLearningJob"}, transmitter: sednav1.TransmitterWS},
	"sample-federatedlearningjob-yolo.yaml":     {kinds: []string{"FederatedLearningJob"}, transmitter: sednav1.TransmitterS3},
	"sample-objectsearchservice.yaml":           {kinds: []string{"ObjectSearchService"}},
	"sample-objecttrackingservice.yaml":         {kinds: []string{"ObjectTrackingService"}},
	"example-ji-helmet-detection.yaml":          {kinds: []string{"Model", "Model", "JointInferenceService"}},
	"example-ji-answer-generation.yaml":         {kinds: []string{"Model", "Model", "JointInferenceService"}},
	"example-il-helmet-detection.yaml":          {kinds: []string{"Dataset", "Model", "Model", "IncrementalLearningJob"}},
	"example-il-dog-croissants.yaml":            {kinds: []string{"Dataset", "Model", "Model", "IncrementalLearningJob"}},
	"example-fl-surface-defect.yaml": {
		kinds: []string{"Dataset", "Dataset", "Model", "FederatedLearningJob"}, transmitter: sednav1.TransmitterWS},
	"example-fl-surface-defect-v2.yaml": {
		kinds: []string{"Dataset", "Dataset", "Model", "FederatedLearningJob"}, transmitter: sednav1.TransmitterWS},
	"example-fl-yolov5-mistnet.yaml": {
		kinds: []string{"Dataset", "Dataset", "Model", "Model", "Secret", "FederatedLearningJob"}, transmitter: sednav1.TransmitterS3},
	"example-ll-atcii.yaml":      {kinds: []string{"Dataset", "LifelongLearningJob"}},
	"example-ll-cityscapes.yaml": {kinds: []string{"Dataset", "LifelongLearningJob"}},
	"example-multiedge-pedestrian-tracking.yaml": {
		kinds: []string{"Model", "Model", "FeatureExtractionService", "ReidJob", "VideoAnalyticsJob"}},
	"example-s3-incremental-learning.yaml": {kinds: []string{"Secret", "Dataset", "Model", "Model", "IncrementalLearningJob"}},
	"example-s3-joint-inference.yaml":      {kinds: []string{"Secret", "Model", "Model", "JointInferenceService"}},
}

// TestUpstreamSamplesApply creates every object of upstream's samples and examples, each file in a
// namespace of its own, with strict field validation as kubectl create and apply use by default.
// Every object must be accepted and kept as written; every Sedna object must also decode strictly
// into the Go types, every trigger must build an LC trigger, and every federated job's transmitter
// must resolve as upstream's GM resolves it.
func TestUpstreamSamplesApply(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(upstreamFixtureDir, "*.yaml"))
	require.NoError(t, err)
	var names []string
	for _, file := range files {
		names = append(names, filepath.Base(file))
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(upstreamFixtures)), names, "testdata/upstream and upstreamFixtures disagree")

	// Together the fixtures cover every Sedna kind.
	covered := map[string]bool{}
	for _, fixture := range upstreamFixtures {
		for _, kind := range fixture.kinds {
			covered[kind] = true
		}
	}
	for _, kc := range kindCases {
		require.True(t, covered[kc.kind], "no upstream fixture creates a %s", kc.kind)
	}

	for _, name := range slices.Sorted(slices.Values(names)) {
		fixture := upstreamFixtures[name]
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			ctx := context.Background()
			ns := newNamespace(t)
			objs := loadUpstreamFixture(t, name)
			var kinds []string
			for _, obj := range objs {
				kinds = append(kinds, obj.GetKind())
			}
			require.Equal(t, fixture.kinds, kinds, "documents of %s", name)

			for _, obj := range objs {
				client := controlPlane.Dynamic.Resource(upstreamResource(t, obj)).Namespace(ns)
				want := obj.DeepCopy()
				_, err := client.Create(ctx, obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
				require.NoError(t, err, "%s %s refused", obj.GetKind(), obj.GetName())

				got, err := client.Get(ctx, obj.GetName(), metav1.GetOptions{})
				require.NoError(t, err)
				if obj.GetKind() == "Secret" {
					requireUpstreamSecretKept(t, want, got)
					continue
				}
				require.Empty(t, subsetDiff(want.Object["spec"], got.Object["spec"], "spec"),
					"%s %s: the API server dropped or changed fields", obj.GetKind(), obj.GetName())
				requireUpstreamSemantics(t, fixture, got)
			}
		})
	}
}

// requireUpstreamSecretKept checks what GM reads of an S3 Secret: the endpoint annotations and the
// two keys (stringData arrives as data).
func requireUpstreamSecretKept(t *testing.T, want, got *unstructured.Unstructured) {
	t.Helper()
	for _, annotation := range []string{"s3-endpoint", "s3-usehttps"} {
		require.NotEmpty(t, want.GetAnnotations()[annotation], "fixture Secret lacks %s", annotation)
		require.Equal(t, want.GetAnnotations()[annotation], got.GetAnnotations()[annotation])
	}
	var secret corev1.Secret
	require.NoError(t, json.Unmarshal(mustJSON(t, got), &secret))
	require.Equal(t, "test-access-key", string(secret.Data["ACCESS_KEY_ID"]))
	require.Equal(t, "test-secret-key", string(secret.Data["SECRET_ACCESS_KEY"]))
}

// requireUpstreamSemantics decodes a stored Sedna object strictly into its Go type and checks what
// the LC and GM will make of it.
func requireUpstreamSemantics(t *testing.T, fixture upstreamFixture, stored *unstructured.Unstructured) {
	t.Helper()
	typed, err := scheme.Scheme.New(sednav1.SchemeGroupVersion.WithKind(stored.GetKind()))
	require.NoError(t, err)
	require.NoError(t, strictDecode(mustJSON(t, stored), typed), "Go type of %s lacks a field the API server kept", stored.GetKind())

	var triggers map[string]sednav1.Trigger
	switch job := typed.(type) {
	case *sednav1.IncrementalLearningJob:
		triggers = map[string]sednav1.Trigger{"trainSpec.trigger": job.Spec.TrainSpec.Trigger, "deploySpec.trigger": job.Spec.DeploySpec.Trigger}
	case *sednav1.LifelongLearningJob:
		triggers = map[string]sednav1.Trigger{"trainSpec.trigger": job.Spec.TrainSpec.Trigger}
	case *sednav1.FederatedLearningJob:
		require.NotEmpty(t, fixture.transmitter, "the table names no transmitter for %s", job.Name)
		require.Equal(t, fixture.transmitter, job.Spec.Transmitter.Effective(), "transmitter of %s", job.Name)
	}
	for path, spec := range triggers {
		_, err := trigger.New(spec)
		require.NoError(t, err, "the LC refuses %s %s that the API server accepted", stored.GetName(), path)
	}
}

// TestUpstreamSamplesKeepRejecting checks that loosening the CRDs to what upstream runs did not let
// through what is really invalid: each case changes one field of an upstream fixture (or restores
// what upstream's own text gets wrong) and the API server must refuse it, naming the field.
func TestUpstreamSamplesKeepRejecting(t *testing.T) {
	ns := newNamespace(t)
	cases := map[string]struct {
		fixture string
		kind    string // the fixture's first object of this kind is changed
		mutate  func(obj map[string]any)
		want    []string // each must appear in the error
	}{
		// Upstream's ObjectSearch and ObjectTracking samples write this; upstream's API server
		// refuses it as well.
		"env value that is a YAML list": {
			fixture: "sample-objectsearchservice.yaml",
			kind:    "ObjectSearchService",
			mutate: func(o map[string]any) {
				setPath(o, []any{"192.168.0.12", "192.168.0.13"}, "spec", "trackingWorkers", 0, "template", "spec", "containers", 0, "env", 0, "value")
			},
			want: []string{"spec.trackingWorkers[0].template.spec.containers[0].env[0].value", "must be of type string"},
		},
		"reid workers without a selector": {
			fixture: "sample-objecttrackingservice.yaml",
			kind:    "ObjectTrackingService",
			mutate:  func(o map[string]any) { del(o, "spec", "reidWorkers", "selector") },
			want:    []string{"spec.reidWorkers.selector", "Required value"},
		},
		"timer end 25:00": {
			fixture: "sample-incrementallearningjob.yaml",
			kind:    "IncrementalLearningJob",
			mutate:  func(o map[string]any) { set(o, "25:00", "spec", "trainSpec", "trigger", "timer", "end") },
			want:    []string{"spec.trainSpec.trigger.timer.end", "should match"},
		},
		"timer end 24:01": {
			fixture: "sample-lifelonglearningjob.yaml",
			kind:    "LifelongLearningJob",
			mutate:  func(o map[string]any) { set(o, "24:01", "spec", "trainSpec", "trigger", "timer", "end") },
			want:    []string{"spec.trainSpec.trigger.timer.end", "should match"},
		},
		"timer start 24:00": {
			fixture: "example-ll-cityscapes.yaml",
			kind:    "LifelongLearningJob",
			mutate:  func(o map[string]any) { set(o, "24:00", "spec", "trainSpec", "trigger", "timer", "start") },
			want: []string{"spec.trainSpec.trigger.timer.start",
				"24:00 is the end of the day and only valid as end; a window starting at midnight starts at 00:00"},
		},
		"timer start 25:00": {
			fixture: "example-il-helmet-detection.yaml",
			kind:    "IncrementalLearningJob",
			mutate:  func(o map[string]any) { set(o, "25:00", "spec", "trainSpec", "trigger", "timer", "start") },
			want:    []string{"spec.trainSpec.trigger.timer.start", "should match"},
		},
		"timer end unpadded": {
			fixture: "example-ll-atcii.yaml",
			kind:    "LifelongLearningJob",
			mutate:  func(o map[string]any) { set(o, "9:00", "spec", "trainSpec", "trigger", "timer", "end") },
			want:    []string{"spec.trainSpec.trigger.timer.end", "should match"},
		},
		"trainProb 0": {
			fixture: "example-ll-cityscapes.yaml",
			kind:    "LifelongLearningJob",
			mutate:  func(o map[string]any) { set(o, 0.0, "spec", "dataset", "trainProb") },
			want:    []string{"spec.dataset.trainProb", "trainProb must be in (0, 1]"},
		},
		"trainProb 0 in incremental learning": {
			fixture: "example-il-dog-croissants.yaml",
			kind:    "IncrementalLearningJob",
			mutate:  func(o map[string]any) { set(o, 0.0, "spec", "dataset", "trainProb") },
			want:    []string{"spec.dataset.trainProb", "trainProb must be in (0, 1]"},
		},
		"unknown operator": {
			fixture: "example-il-helmet-detection.yaml",
			kind:    "IncrementalLearningJob",
			mutate:  func(o map[string]any) { set(o, "~=", "spec", "deploySpec", "trigger", "condition", "operator") },
			want:    []string{"spec.deploySpec.trigger.condition.operator", "Unsupported value", `"~="`},
		},
		"dataset format that is neither an index nor a directory": {
			fixture: "example-fl-yolov5-mistnet.yaml",
			kind:    "Dataset",
			mutate:  func(o map[string]any) { set(o, "parquet", "spec", "format") },
			want:    []string{"spec.format", "format must be txt, csv or dir"},
		},
		"s3 transmitter without its path": {
			fixture: "sample-federatedlearningjob-yolo.yaml",
			kind:    "FederatedLearningJob",
			mutate:  func(o map[string]any) { del(o, "spec", "transmitter", "s3", "aggDataPath") },
			want:    []string{"spec.transmitter.s3.aggDataPath", "Required value"},
		},
		"hot update poll period 0": {
			fixture: "example-s3-incremental-learning.yaml",
			kind:    "IncrementalLearningJob",
			mutate:  func(o map[string]any) { set(o, int64(0), "spec", "deploySpec", "model", "pollPeriodSeconds") },
			want:    []string{"spec.deploySpec.model.pollPeriodSeconds", "should be greater than or equal to 1"},
		},
		// Upstream's S3 README indents a Model's spec under metadata; upstream's API server refuses
		// that too.
		"model spec indented under metadata": {
			fixture: "example-s3-joint-inference.yaml",
			kind:    "Model",
			mutate: func(o map[string]any) {
				spec := o["spec"]
				delete(o, "spec")
				set(o, spec, "metadata", "spec")
			},
			want: []string{`unknown field "metadata.spec"`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obj := fixtureObject(t, tc.fixture, tc.kind)
			tc.mutate(obj.Object)
			_, err := controlPlane.Dynamic.Resource(upstreamResource(t, obj)).Namespace(ns).Create(context.Background(), obj,
				metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
			require.Error(t, err, "invalid object accepted")
			require.True(t, apierrors.IsInvalid(err) || apierrors.IsBadRequest(err), "unexpected error: %v", err)
			for _, want := range tc.want {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

// fixtureObject is the first object of kind in testdata/upstream/<name>.
func fixtureObject(t *testing.T, name, kind string) *unstructured.Unstructured {
	t.Helper()
	objs := loadUpstreamFixture(t, name)
	i := slices.IndexFunc(objs, func(obj *unstructured.Unstructured) bool { return obj.GetKind() == kind })
	require.GreaterOrEqual(t, i, 0, "%s has no %s", name, kind)
	return objs[i]
}

// loadUpstreamFixture reads the documents of testdata/upstream/<name> as kubectl does: YAML to
// JSON with sigs.k8s.io/yaml, so unquoted 02:00 and 24:00 stay strings.
func loadUpstreamFixture(t *testing.T, name string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(upstreamFixtureDir, name))
	require.NoError(t, err)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for index := 0; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		require.NoError(t, err, "%s document %d", name, index)
		jsonData, err := yaml.YAMLToJSON(doc)
		require.NoError(t, err, "%s document %d is not valid YAML", name, index)
		if string(bytes.TrimSpace(jsonData)) == "null" {
			continue // only comments
		}
		obj := &unstructured.Unstructured{}
		require.NoError(t, obj.UnmarshalJSON(jsonData), "%s document %d", name, index)
		objs = append(objs, obj)
	}
}

// upstreamResource maps a fixture object to its resource: a Sedna kind, or a core Secret.
func upstreamResource(t *testing.T, obj *unstructured.Unstructured) schema.GroupVersionResource {
	t.Helper()
	if obj.GetAPIVersion() == "v1" && obj.GetKind() == "Secret" {
		return corev1.SchemeGroupVersion.WithResource("secrets")
	}
	require.Equal(t, sednav1.SchemeGroupVersion.String(), obj.GetAPIVersion(), "%s %s", obj.GetKind(), obj.GetName())
	return caseFor(t, obj.GetKind()).gvr()
}

// setPath sets value at path, whose elements are map keys (string) or list indexes (int).
func setPath(obj map[string]any, value any, path ...any) {
	var current any = obj
	for i, step := range path {
		last := i == len(path)-1
		switch key := step.(type) {
		case string:
			m := current.(map[string]any) // a broken test table panics, as set does
			if last {
				m[key] = value
				return
			}
			current = m[key]
		case int:
			list := current.([]any)
			if last {
				list[key] = value
				return
			}
			current = list[key]
		default:
			panic("setPath: step " + strconv.Itoa(i) + " is neither a key nor an index")
		}
	}
}

func mustJSON(t *testing.T, obj *unstructured.Unstructured) []byte {
	t.Helper()
	data, err := obj.MarshalJSON()
	require.NoError(t, err)
	return data
}
