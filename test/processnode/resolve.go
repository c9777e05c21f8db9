package processnode

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ObjectSource gives the Secrets and ConfigMaps a pod's environment refers to.
type ObjectSource interface {
	Secret(namespace, name string) (*corev1.Secret, error)
	ConfigMap(namespace, name string) (*corev1.ConfigMap, error)
}

// ImageTable maps container images (without tag, or with) to binaries. The e2e examples' workers
// are built into _output/bin and listed here; an image not in the table cannot run.
type ImageTable map[string]string

// Binary returns the binary for image: an exact match first, then the image without its tag.
func (t ImageTable) Binary(image string) (string, error) {
	if b, ok := t[image]; ok {
		return b, nil
	}
	repo := image
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		repo = image[:i]
	}
	if b, ok := t[repo]; ok {
		return b, nil
	}
	known := make([]string, 0, len(t))
	for k := range t {
		known = append(known, k)
	}
	sort.Strings(known)
	return "", fmt.Errorf("image %q has no local binary (known images: %s)", image, strings.Join(known, ", "))
}

// LoadImageTable reads "image binary" lines (# comments allowed); relative binaries are resolved
// against binDir.
func LoadImageTable(path, binDir string) (ImageTable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the image table: %w", err)
	}
	table := ImageTable{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s line %d: want \"image binary\", got %q", path, i+1, line)
		}
		binary := fields[1]
		if !filepath.IsAbs(binary) {
			binary = filepath.Join(binDir, binary)
		}
		table[fields[0]] = binary
	}
	return table, nil
}

// ResolveEnv computes a container's environment as the kubelet does: envFrom first, then env in
// order, each value expanded against what came before; fieldRef reads the pod (with podIP and
// hostIP given), secretKeyRef and configMapKeyRef read src. Missing optional references are
// skipped; a missing required one is an error naming it.
func ResolveEnv(pod *corev1.Pod, c *corev1.Container, src ObjectSource) ([]string, map[string]string, error) {
	env := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := env[name]; !ok {
			order = append(order, name)
		}
		env[name] = value
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := src.ConfigMap(pod.Namespace, from.ConfigMapRef.Name)
			if err != nil {
				if isOptional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, nil, fmt.Errorf("envFrom configMap %s: %w", from.ConfigMapRef.Name, err)
			}
			for _, k := range sortedKeys(cm.Data) {
				set(from.Prefix+k, cm.Data[k])
			}
		case from.SecretRef != nil:
			secret, err := src.Secret(pod.Namespace, from.SecretRef.Name)
			if err != nil {
				if isOptional(from.SecretRef.Optional) {
					continue
				}
				return nil, nil, fmt.Errorf("envFrom secret %s: %w", from.SecretRef.Name, err)
			}
			keys := make([]string, 0, len(secret.Data))
			for k := range secret.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				set(from.Prefix+k, string(secret.Data[k]))
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, Expand(e.Value, env))
			continue
		}
		value, skip, err := valueFrom(pod, e, src)
		if err != nil {
			return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if !skip {
			set(e.Name, value)
		}
	}
	list := make([]string, 0, len(order))
	for _, name := range order {
		list = append(list, name+"="+env[name])
	}
	return list, env, nil
}

func valueFrom(pod *corev1.Pod, e corev1.EnvVar, src ObjectSource) (string, bool, error) {
	from := e.ValueFrom
	switch {
	case from.FieldRef != nil:
		v, err := fieldValue(pod, from.FieldRef.FieldPath)
		return v, false, err
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		secret, err := src.Secret(pod.Namespace, ref.Name)
		if err != nil {
			return "", isOptional(ref.Optional), optionalErr(ref.Optional, fmt.Errorf("secret %s: %w", ref.Name, err))
		}
		v, ok := secret.Data[ref.Key]
		if !ok {
			return "", isOptional(ref.Optional), optionalErr(ref.Optional, fmt.Errorf("secret %s has no key %s", ref.Name, ref.Key))
		}
		return string(v), false, nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := src.ConfigMap(pod.Namespace, ref.Name)
		if err != nil {
			return "", isOptional(ref.Optional), optionalErr(ref.Optional, fmt.Errorf("configMap %s: %w", ref.Name, err))
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			return "", isOptional(ref.Optional), optionalErr(ref.Optional, fmt.Errorf("configMap %s has no key %s", ref.Name, ref.Key))
		}
		return v, false, nil
	default:
		return "", false, fmt.Errorf("unsupported valueFrom (resourceFieldRef and fileKeyRef are not run by this harness)")
	}
}

func fieldValue(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	}
	for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
		if key, ok := strings.CutPrefix(path, prefix); ok && strings.HasSuffix(key, "']") {
			key = strings.TrimSuffix(key, "']")
			if prefix == "metadata.labels['" {
				return pod.Labels[key], nil
			}
			return pod.Annotations[key], nil
		}
	}
	return "", fmt.Errorf("fieldRef %q is not supported", path)
}

func isOptional(optional *bool) bool { return optional != nil && *optional }

func optionalErr(optional *bool, err error) error {
	if isOptional(optional) {
		return nil
	}
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Expand replaces $(VAR) with env[VAR] as Kubernetes does: $$ escapes a $, and a reference to an
// undefined variable is left as written.
func Expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// Command returns the argv of a container: the image's binary (or the container's command, whose
// first element is replaced by the binary when it names the image's entry point), then the
// arguments, all expanded against env.
func Command(c *corev1.Container, images ImageTable, env map[string]string) ([]string, error) {
	binary, err := images.Binary(c.Image)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	argv := []string{binary}
	// A command beyond the entry point (e.g. ["python", "train.py"]) becomes arguments: the local
	// binary is the whole worker.
	if len(c.Command) > 1 {
		for _, a := range c.Command[1:] {
			argv = append(argv, Expand(a, env))
		}
	}
	for _, a := range c.Args {
		argv = append(argv, Expand(a, env))
	}
	return argv, nil
}
