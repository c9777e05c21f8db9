package workers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

const (
	// AppLabel is the extra label upstream puts on Deployments, their selectors and pod templates.
	AppLabel = "app.sedna.io"
	// SpecHashAnnotation holds the hash of the spec GM last wrote to a child. Comparing it with the
	// hash of the desired spec tells whether the child must be updated without comparing against
	// the fields the API server defaults (which would make every sync look like a change).
	SpecHashAnnotation = "sedna.io/spec-hash"
)

// Owner is the Sedna resource that owns a worker: its metadata and its kind.
type Owner struct {
	metav1.Object
	// Kind is the resource's kind as in the API, e.g. "JointInferenceService".
	Kind string
}

// GroupVersionKind is the owner's kind in sedna.io/v1alpha1.
func (o Owner) GroupVersionKind() schema.GroupVersionKind {
	return sednav1.SchemeGroupVersion.WithKind(o.Kind)
}

// Labels are the three labels of every child of owner for workerType:
// <kind lower>.sedna.io/{name,uid,worker-type}, the worker type lowercased as upstream does.
func Labels(owner Owner, workerType string) map[string]string {
	prefix := strings.ToLower(owner.Kind) + ".sedna.io/"
	return map[string]string{
		prefix + "name":        owner.GetName(),
		prefix + "uid":         string(owner.GetUID()),
		prefix + "worker-type": strings.ToLower(workerType),
	}
}

// OwnerSelector is the label set selecting every child of owner (name and uid only).
func OwnerSelector(owner Owner) map[string]string {
	prefix := strings.ToLower(owner.Kind) + ".sedna.io/"
	return map[string]string{prefix + "name": owner.GetName(), prefix + "uid": string(owner.GetUID())}
}

// AppLabelValue is upstream's app.sedna.io value: "<name>-<workerType as given>-svc".
func AppLabelValue(owner Owner, workerType string) string {
	return owner.GetName() + "-" + workerType + "-svc"
}

// OwnerReferences is the controller reference to owner, as every child carries it.
func OwnerReferences(owner Owner) []metav1.OwnerReference {
	return []metav1.OwnerReference{*metav1.NewControllerRef(owner, owner.GroupVersionKind())}
}

// DeploymentName is "<owner>-deployment-<worker type lower>".
func DeploymentName(owner Owner, workerType string) string {
	return owner.GetName() + "-deployment-" + strings.ToLower(workerType)
}

// ServiceName is "<owner>-<worker type>", lowercased as a DNS label must be.
func ServiceName(owner Owner, workerType string) string {
	return strings.ToLower(owner.GetName() + "-" + workerType)
}

// HPAName is "hpa-<deployment>".
func HPAName(deploymentName string) string { return "hpa-" + deploymentName }

// ServiceHost is how pods in the cluster reach a Service: "<service>.<namespace>".
func ServiceHost(owner Owner, workerType string) string {
	return ServiceName(owner, workerType) + "." + owner.GetNamespace()
}

// StableSuffix returns n hex characters derived from the owner's UID: a name part that is unique
// per owner but the same on every sync, unlike upstream's random suffixes which would change the
// pod template, and so roll the workers, each time it is rebuilt.
func StableSuffix(owner Owner, n int) string {
	sum := sha256.Sum256([]byte(owner.GetUID()))
	return hex.EncodeToString(sum[:])[:n]
}

// SpecHash hashes the JSON form of v, for SpecHashAnnotation.
func SpecHash(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("hashing spec: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16]), nil
}

// NewDeployment returns the worker Deployment of owner for workerType running template (already
// built by Worker.PodTemplate). Only replicas (nil → 1) and the template come from the user, as
// upstream: the selector is the owner's labels plus app.sedna.io, also added to the template.
// The returned Deployment carries SpecHashAnnotation over its spec.
func NewDeployment(owner Owner, workerType string, replicas *int32, template corev1.PodTemplateSpec) (*appsv1.Deployment, error) {
	labels := Labels(owner, workerType)
	labels[AppLabel] = AppLabelValue(owner, workerType)
	template = *template.DeepCopy()
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	dropGMLabels(template.Labels)
	for k, v := range labels {
		template.Labels[k] = v
	}
	if replicas == nil {
		replicas = ptr.To[int32](1)
	}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: DeploymentName(owner, workerType), Namespace: owner.GetNamespace(),
			Labels: labels, OwnerReferences: OwnerReferences(owner),
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(*replicas),
			Selector: &metav1.LabelSelector{MatchLabels: copyMap(labels)},
			Template: template,
		},
	}
	hash, err := SpecHash(deployment.Spec)
	if err != nil {
		return nil, err
	}
	deployment.Annotations = map[string]string{SpecHashAnnotation: hash}
	return deployment, nil
}

// NewService returns the ClusterIP Service "<owner>-<workerType>" exposing port on the workers of
// workerType (upstream's edgemesh-style service), with SpecHashAnnotation over its spec.
func NewService(owner Owner, workerType string, port int32) (*corev1.Service, error) {
	labels := Labels(owner, workerType)
	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceName(owner, workerType), Namespace: owner.GetNamespace(),
			Labels: labels, OwnerReferences: OwnerReferences(owner),
		},
		Spec: corev1.ServiceSpec{
			Selector: copyMap(labels),
			Ports: []corev1.ServicePort{{
				Name: "tcp-0", Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(port),
			}},
		},
	}
	hash, err := SpecHash(service.Spec)
	if err != nil {
		return nil, err
	}
	service.Annotations = map[string]string{SpecHashAnnotation: hash}
	return service, nil
}

// NewHPA returns the autoscaling/v2 HorizontalPodAutoscaler "hpa-<deployment>" scaling the worker
// Deployment deploymentName as hpa asks, with SpecHashAnnotation over its spec.
func NewHPA(owner Owner, workerType, deploymentName string, hpa *sednav1.HPA) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	hpa = hpa.DeepCopy()
	autoscaler := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name: HPAName(deploymentName), Namespace: owner.GetNamespace(),
			Labels: Labels(owner, workerType), OwnerReferences: OwnerReferences(owner),
		},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: deploymentName},
			MinReplicas:    hpa.MinReplicas,
			MaxReplicas:    hpa.MaxReplicas,
			Metrics:        hpa.Metrics,
			Behavior:       hpa.Behavior,
		},
	}
	hash, err := SpecHash(autoscaler.Spec)
	if err != nil {
		return nil, err
	}
	autoscaler.Annotations = map[string]string{SpecHashAnnotation: hash}
	return autoscaler, nil
}

// IsControlledBy reports whether obj's controller reference points at owner (by UID).
func IsControlledBy(obj metav1.Object, owner Owner) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == owner.GetUID()
}

// GM's own pods' labels: the gm Service selects app.kubernetes.io/name=sedna-gm and
// sedna.io/gm-role=leader (build/gm). A worker template carrying them would put a user's worker
// behind the LC channel's Service, so dropGMLabels removes them from worker pods (the rest of
// the template's labels are kept, as upstream).
const (
	gmRoleLabel = "sedna.io/gm-role"
	gmNameLabel = "app.kubernetes.io/name"
	gmNameValue = "sedna-gm"
)

func dropGMLabels(labels map[string]string) {
	delete(labels, gmRoleLabel)
	if labels[gmNameLabel] == gmNameValue {
		delete(labels, gmNameLabel)
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
