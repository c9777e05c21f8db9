package workers

import (
	"net"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultLCPort is the port the LC serves workers on (upstream's BIND_PORT default).
const DefaultLCPort = "9100"

// NewPod returns a bare worker pod of owner named name, from template (already built by
// Worker.PodTemplate): the template's labels (but GM's own, see dropGMLabels), annotations and
// finalizers are kept and the owner's labels for workerType plus extraLabels added, the spec is copied as is. Upstream's generateName
// is not used: callers choose deterministic names so that a lagging cache cannot make them
// create a second pod. The returned pod carries SpecHashAnnotation over its spec.
func NewPod(owner Owner, workerType, name string, template corev1.PodTemplateSpec, extraLabels map[string]string) (*corev1.Pod, error) {
	template = *template.DeepCopy()
	labels := copyMap(template.Labels)
	dropGMLabels(labels)
	for k, v := range Labels(owner, workerType) {
		labels[k] = v
	}
	for k, v := range extraLabels {
		labels[k] = v
	}
	annotations := copyMap(template.Annotations)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: owner.GetNamespace(), Labels: labels, Annotations: annotations,
			Finalizers: template.Finalizers, OwnerReferences: OwnerReferences(owner),
		},
		Spec: template.Spec,
	}
	hash, err := SpecHash(pod.Spec)
	if err != nil {
		return nil, err
	}
	pod.Annotations[SpecHashAnnotation] = hash
	return pod, nil
}

// LCServerEnv returns the env that gives a worker its node's LC in LC_SERVER (always last). The
// configured URL usually is upstream's http://localhost:9100, which only hostNetwork pods can
// use: then the LC is reached at the node's IP, put by the downward API in hostIPEnv (first, as
// $(VAR) only expands variables defined earlier), on the configured port. A URL naming another
// host is an operator's explicit choice and is used verbatim.
func LCServerEnv(configured, hostIPEnv string) []corev1.EnvVar {
	port := DefaultLCPort
	if configured != "" {
		u, err := url.Parse(configured)
		if err != nil || u.Hostname() == "" {
			return []corev1.EnvVar{{Name: "LC_SERVER", Value: configured}}
		}
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
		default:
			return []corev1.EnvVar{{Name: "LC_SERVER", Value: configured}}
		}
		if u.Port() != "" {
			port = u.Port()
		}
	}
	return []corev1.EnvVar{
		HostIPEnv(hostIPEnv),
		{Name: "LC_SERVER", Value: "http://" + net.JoinHostPort("$("+hostIPEnv+")", port)},
	}
}

// PodNameEnv is an env var holding the pod's own name from the downward API: a worker identity
// that is unique per pod and needs no random suffix in the template.
func PodNameEnv(name string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
	}}
}
