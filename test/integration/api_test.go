package integration

import (
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/client/clientset/versioned/scheme"
)

// TestFixturesRoundTrip creates every kind from a fixture that sets every spec field and checks
// that the API server and the Go types keep all of it, pod-template metadata included.
func TestFixturesRoundTrip(t *testing.T) {
	ns := newNamespace(t)
	for _, kc := range kindCases {
		t.Run(kc.kind, func(t *testing.T) {
			ctx := context.Background()
			fixture := loadFixture(t, kc.fixture)
			require.Equal(t, kc.kind, fixture.GetKind())
			wantSpec, ok := fixture.Object["spec"].(map[string]any)
			require.True(t, ok, "fixture has no spec")

			// The fixture covers every field of our Go types, and the Go types know every field of
			// the fixture.
			missing := missingFields(reflect.TypeOf(kc.spec), wantSpec, "spec")
			require.Empty(t, missing, "fixture %s leaves fields unset", kc.fixture)
			specJSON, err := json.Marshal(wantSpec)
			require.NoError(t, err)
			require.NoError(t, strictDecode(specJSON, kc.spec), "Go type of %s lacks a fixture field", kc.kind)

			created, err := controlPlane.Dynamic.Resource(kc.gvr()).Namespace(ns).Create(ctx, fixture,
				metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
			require.NoError(t, err)

			got, err := controlPlane.Dynamic.Resource(kc.gvr()).Namespace(ns).Get(ctx, created.GetName(), metav1.GetOptions{})
			require.NoError(t, err)
			require.Empty(t, subsetDiff(wantSpec, got.Object["spec"], "spec"), "the API server dropped or changed fields")
			if !kc.noTemplate {
				requireTemplateMetadataKept(t, wantSpec, got.Object["spec"])
			}

			// Through the typed client: decode, re-encode, and compare with the fixture decoded
			// by the same types, so that nothing is lost between the wire and Go.
			typed, err := getTyped(ctx, kc, ns, created.GetName())
			require.NoError(t, err)
			typedSpec := reflect.ValueOf(typed).Elem().FieldByName("Spec").Interface()
			gotJSON, err := json.Marshal(typedSpec)
			require.NoError(t, err)
			var gotTyped, wantTyped map[string]any
			require.NoError(t, json.Unmarshal(gotJSON, &gotTyped))
			wantJSON, err := json.Marshal(reflect.ValueOf(kc.spec).Elem().Interface())
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(wantJSON, &wantTyped))
			require.Empty(t, subsetDiff(wantTyped, gotTyped, "spec"), "typed client lost fields")
		})
	}
}

// requireTemplateMetadataKept checks explicitly that every pod template in the spec kept its
// name, labels and annotations: upstream's CRDs prune them.
func requireTemplateMetadataKept(t *testing.T, want, got any) {
	t.Helper()
	var walk func(w, g any, path string)
	found := 0
	walk = func(w, g any, path string) {
		switch wv := w.(type) {
		case map[string]any:
			gv, _ := g.(map[string]any)
			for k, v := range wv {
				if k == "template" {
					if meta, ok := v.(map[string]any)["metadata"].(map[string]any); ok {
						found++
						gotTemplate, _ := gv[k].(map[string]any)
						gotMeta, _ := gotTemplate["metadata"].(map[string]any)
						for _, field := range []string{"name", "labels", "annotations"} {
							require.Contains(t, meta, field, "fixture template %s.template lacks metadata.%s", path, field)
							require.Equal(t, meta[field], gotMeta[field], "%s.template.metadata.%s", path, field)
						}
					}
				}
				walk(v, gv[k], path+"."+k)
			}
		case []any:
			gv, _ := g.([]any)
			for i := range wv {
				if i < len(gv) {
					walk(wv[i], gv[i], path)
				}
			}
		}
	}
	walk(want, got, "spec")
	require.Positive(t, found, "no pod template with metadata in the fixture")
}

func getTyped(ctx context.Context, kc kindCase, ns, name string) (runtime.Object, error) {
	obj, err := scheme.Scheme.New(sednav1.SchemeGroupVersion.WithKind(kc.kind))
	if err != nil {
		return nil, err
	}
	err = controlPlane.Sedna.SednaV1alpha1().RESTClient().Get().
		Namespace(ns).Resource(kc.plural).Name(name).Do(ctx).Into(obj)
	return obj, err
}

// TestInvalidObjectsRejected checks that what can be validated statically is, with a message that
// names the field.
func TestInvalidObjectsRejected(t *testing.T) {
	ns := newNamespace(t)
	cases := map[string]struct {
		fixture string
		mutate  func(obj map[string]any)
		want    []string // each must appear in the error
	}{
		"trainProb zero": {
			fixture: "incrementallearningjob.yaml",
			mutate:  func(o map[string]any) { set(o, 0.0, "spec", "dataset", "trainProb") },
			want:    []string{"spec.dataset.trainProb", "trainProb must be in (0, 1]"},
		},
		"trainProb above one": {
			fixture: "lifelonglearningjob.yaml",
			mutate:  func(o map[string]any) { set(o, 1.5, "spec", "dataset", "trainProb") },
			want:    []string{"spec.dataset.trainProb", "trainProb must be in (0, 1]"},
		},
		"timer not HH:MM": {
			fixture: "incrementallearningjob.yaml",
			mutate:  func(o map[string]any) { set(o, "25:00", "spec", "trainSpec", "trigger", "timer", "start") },
			want:    []string{"spec.trainSpec.trigger.timer.start"},
		},
		"unknown trigger operator": {
			fixture: "incrementallearningjob.yaml",
			mutate:  func(o map[string]any) { set(o, "bigger", "spec", "deploySpec", "trigger", "condition", "operator") },
			want:    []string{"spec.deploySpec.trigger.condition.operator", "Unsupported value"},
		},
		"no training workers": {
			fixture: "federatedlearningjob.yaml",
			mutate:  func(o map[string]any) { set(o, []any{}, "spec", "trainingWorkers") },
			want:    []string{"spec.trainingWorkers"},
		},
		"no tracking workers": {
			fixture: "objectsearchservice.yaml",
			mutate:  func(o map[string]any) { set(o, []any{}, "spec", "trackingWorkers") },
			want:    []string{"spec.trackingWorkers"},
		},
		"edge model without a name": {
			fixture: "jointinferenceservice.yaml",
			mutate:  func(o map[string]any) { set(o, map[string]any{}, "spec", "edgeWorker", "model") },
			want:    []string{"spec.edgeWorker.model.name", "Required value"},
		},
		"cloud worker missing": {
			fixture: "jointinferenceservice.yaml",
			mutate:  func(o map[string]any) { del(o, "spec", "cloudWorker") },
			want:    []string{"spec.cloudWorker", "Required value"},
		},
		"hpa minReplicas above maxReplicas": {
			fixture: "jointinferenceservice.yaml",
			mutate: func(o map[string]any) {
				set(o, int64(5), "spec", "cloudWorker", "hpa", "minReplicas")
				set(o, int64(2), "spec", "cloudWorker", "hpa", "maxReplicas")
			},
			want: []string{"spec.cloudWorker.hpa", "minReplicas must not exceed maxReplicas"},
		},
		"dataset format": {
			fixture: "dataset.yaml",
			mutate:  func(o map[string]any) { set(o, "parquet", "spec", "format") },
			want:    []string{"spec.format", "format must be txt, csv or dir"},
		},
		"dataset without node": {
			fixture: "dataset.yaml",
			mutate:  func(o map[string]any) { set(o, "", "spec", "nodeName") },
			want:    []string{"spec.nodeName"},
		},
		"model reference empty": {
			fixture: "incrementallearningjob.yaml",
			mutate:  func(o map[string]any) { set(o, "", "spec", "initialModel", "name") },
			want:    []string{"spec.initialModel.name"},
		},
		"poll period zero": {
			fixture: "incrementallearningjob.yaml",
			mutate:  func(o map[string]any) { set(o, int64(0), "spec", "deploySpec", "model", "pollPeriodSeconds") },
			want:    []string{"spec.deploySpec.model.pollPeriodSeconds"},
		},
		"unknown field": {
			fixture: "model.yaml",
			mutate:  func(o map[string]any) { set(o, "yes", "spec", "colour") },
			want:    []string{"spec.colour", "unknown field"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obj := loadFixture(t, tc.fixture)
			tc.mutate(obj.Object)
			kc := caseFor(t, obj.GetKind())
			_, err := controlPlane.Dynamic.Resource(kc.gvr()).Namespace(ns).Create(context.Background(), obj,
				metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
			require.Error(t, err, "invalid object accepted")
			require.True(t, apierrors.IsInvalid(err) || apierrors.IsBadRequest(err), "unexpected error: %v", err)
			for _, want := range tc.want {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func caseFor(t *testing.T, kind string) kindCase {
	t.Helper()
	i := slices.IndexFunc(kindCases, func(k kindCase) bool { return k.kind == kind })
	require.GreaterOrEqual(t, i, 0, "no case for kind %s", kind)
	return kindCases[i]
}

func set(obj map[string]any, value any, path ...string) {
	if err := unstructured.SetNestedField(obj, value, path...); err != nil {
		panic(err) // a broken test table, not a test failure
	}
}

func del(obj map[string]any, path ...string) { unstructured.RemoveNestedField(obj, path...) }

// TestStatusSubresource checks that status is written only through /status and spec only through
// the main resource, for every kind.
func TestStatusSubresource(t *testing.T) {
	ns := newNamespace(t)
	for _, kc := range kindCases {
		t.Run(kc.kind, func(t *testing.T) {
			ctx := context.Background()
			client := controlPlane.Dynamic.Resource(kc.gvr()).Namespace(ns)
			obj := loadFixture(t, kc.fixture)
			obj.SetName("status-" + strings.ToLower(kc.kind))
			created, err := client.Create(ctx, obj, metav1.CreateOptions{})
			require.NoError(t, err)
			generation := created.GetGeneration()

			condition := map[string]any{
				"type": "Ready", "status": "True", "reason": "Tested", "message": "written by the test",
				"lastTransitionTime": "2026-01-02T03:04:05Z", "observedGeneration": generation,
			}
			withStatus := created.DeepCopy()
			set(withStatus.Object, []any{condition}, "status", "conditions")
			set(withStatus.Object, generation, "status", "observedGeneration")
			// A spec change sent to /status must be ignored.
			set(withStatus.Object, map[string]any{"changed": "by-status"}, "metadata", "labels")
			originalSpec := created.Object["spec"]
			withStatus.Object["spec"] = mutateSpecForStatusTest(t, created.Object["spec"])

			updated, err := client.UpdateStatus(ctx, withStatus, metav1.UpdateOptions{})
			require.NoError(t, err)
			require.Equal(t, originalSpec, updated.Object["spec"], "spec changed through /status")
			require.Empty(t, updated.GetLabels()["changed"], "labels changed through /status")
			require.Equal(t, generation, updated.GetGeneration(), "a status write bumped the generation")
			conditions, found, err := unstructured.NestedSlice(updated.Object, "status", "conditions")
			require.NoError(t, err)
			require.True(t, found)
			require.Len(t, conditions, 1)
			require.Equal(t, "Tested", conditions[0].(map[string]any)["reason"])

			// And a status change sent to the main resource is ignored.
			mainUpdate := updated.DeepCopy()
			set(mainUpdate.Object, []any{}, "status", "conditions")
			afterMain, err := client.Update(ctx, mainUpdate, metav1.UpdateOptions{})
			require.NoError(t, err)
			conditions, _, err = unstructured.NestedSlice(afterMain.Object, "status", "conditions")
			require.NoError(t, err)
			require.Len(t, conditions, 1, "status changed through the main resource")
		})
	}
}

// mutateSpecForStatusTest returns a copy of spec with its first string leaf (in key order) changed,
// to send through /status.
func mutateSpecForStatusTest(t *testing.T, spec any) any {
	t.Helper()
	out := runtime.DeepCopyJSONValue(spec)
	var change func(v any) bool
	change = func(v any) bool {
		switch typed := v.(type) {
		case map[string]any:
			keys := slices.Sorted(maps.Keys(typed))
			for _, k := range keys {
				if _, ok := typed[k].(string); ok {
					typed[k] = typed[k].(string) + "-changed"
					return true
				}
				if change(typed[k]) {
					return true
				}
			}
		case []any:
			for _, item := range typed {
				if change(item) {
					return true
				}
			}
		}
		return false
	}
	require.True(t, change(out), "spec has no string field")
	return out
}
