package runtime

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// EncodeForLC returns the JSON an LC receives for obj (a deep copy the caller owns) and its
// version. apiVersion and kind are set, as informers strip them, and managedFields are dropped:
// LCs have no use for them and they can double an object's size.
func EncodeForLC(obj metav1.Object, typeMeta *metav1.TypeMeta, kind string) ([]byte, uint64, error) {
	version, err := Version(obj.GetResourceVersion())
	if err != nil {
		return nil, 0, err
	}
	typeMeta.APIVersion = sednav1.SchemeGroupVersion.String()
	typeMeta.Kind = kind
	obj.SetManagedFields(nil)
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, 0, fmt.Errorf("encoding %s %s/%s for the LC: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return data, version, nil
}

// PublishAll lists every object of a kind and publishes each; features use it to prime the LC
// desired state from their listers.
func PublishAll[T any](kind string, list func(labels.Selector) ([]T, error), publish func(T) error) error {
	objects, err := list(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing %s: %w", kind, err)
	}
	for _, obj := range objects {
		if err := publish(obj); err != nil {
			return err
		}
	}
	return nil
}
