package localsedna

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/sedna-go/sedna/pkg/manifest"
	"github.com/sedna-go/sedna/test/localcluster"
)

// LCDaemonSet is the name of build/lc's DaemonSet.
const LCDaemonSet = "sedna-lc"

// startLCs installs build/lc/daemonset.yaml, adapted to processes sharing one machine, and waits
// until every edge node's LC is connected to GM.
func (s *Sedna) startLCs(ctx context.Context) error {
	ca, err := os.ReadFile(s.GMCAFile())
	if err != nil {
		return fmt.Errorf("reading GM's CA: %w", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "sedna-gm-ca", Namespace: SednaNamespace},
		Data: map[string]string{"ca.crt": string(ca)}}
	if _, err := s.Kube.CoreV1().ConfigMaps(SednaNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the GM CA ConfigMap: %w", err)
	}
	objects, err := decodeManifest(filepath.Join(localcluster.RepoRoot(), "build", "lc", "daemonset.yaml"))
	if err != nil {
		return err
	}
	for _, obj := range objects {
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			if _, err := s.Kube.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating service account %s: %w", o.Name, err)
			}
		case *appsv1.DaemonSet:
			if err := s.adaptLCDaemonSet(o); err != nil {
				return err
			}
			if _, err := s.Kube.AppsV1().DaemonSets(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating DaemonSet %s: %w", o.Name, err)
			}
		default:
			return fmt.Errorf("build/lc/daemonset.yaml: unexpected %T", obj)
		}
	}
	return s.WaitForLCs(ctx)
}

// WaitForLCs waits until GM counts one connected LC per edge node.
func (s *Sedna) WaitForLCs(ctx context.Context) error {
	var connected float64
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		var err error
		connected, err = s.GMMetric(ctx, "sedna_gm_channel_connected_nodes")
		return err == nil && int(connected) == s.opts.EdgeNodes, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d LCs to connect (connected: %v): %w; GM log tail:\n%s", s.opts.EdgeNodes, connected, err, tail(s.GMLog(), 4096))
	}
	return nil
}

// adaptLCDaemonSet changes only what a process cannot do as a container: the LC dials GM's
// process, since GM is not a pod. Its mounts are the manifest's, enforced by the process node.
func (s *Sedna) adaptLCDaemonSet(ds *appsv1.DaemonSet) error {
	spec := &ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return fmt.Errorf("build/lc/daemonset.yaml: want one container, got %d", len(spec.Containers))
	}
	c := &spec.Containers[0]
	gmAddress := s.GMAddress()
	if s.opts.LCGMAddress != nil {
		var err error
		if gmAddress, err = s.opts.LCGMAddress(gmAddress); err != nil {
			return fmt.Errorf("the LCs' GM address: %w", err)
		}
	}
	found := false
	for i := range c.Env {
		if c.Env[i].Name == "GM_ADDRESS" {
			c.Env[i].Value, found = gmAddress, true
		}
	}
	if !found {
		return errors.New("build/lc/daemonset.yaml: the LC container has no GM_ADDRESS")
	}
	if s.opts.DatasetCheckPeriod > 0 {
		c.Args = append(c.Args, "--dataset-check-period="+s.opts.DatasetCheckPeriod.String())
	}
	return nil
}

// decodeManifest reads a multi-document YAML file of built-in kinds.
func decodeManifest(path string) ([]runtime.Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objects, err := manifest.Decode(data, scheme.Scheme)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return objects, nil
}

// LCPod returns the LC pod on node.
func (s *Sedna) LCPod(ctx context.Context, node string) (*corev1.Pod, error) {
	pods, err := s.Kube.CoreV1().Pods(SednaNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/name=sedna-lc", FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no LC pod on node %s", node)
}

// LCPID finds the sedna-lc process of node: the one whose arguments (its token file) lie in the
// node's directory.
func (s *Sedna) LCPID(node string) (int, error) {
	n, ok := s.Node(node)
	if !ok {
		return 0, fmt.Errorf("no node %s", node)
	}
	return FindProcess(func(argv []string) bool {
		return filepath.Base(argv[0]) == "sedna-lc" && slices.ContainsFunc(argv[1:], func(arg string) bool {
			_, value, _ := strings.Cut(arg, "=")
			return strings.HasPrefix(value, n.Root+string(filepath.Separator))
		})
	})
}

// LCLog is the log of node's LC container (all its restarts).
func (s *Sedna) LCLog(ctx context.Context, node string) (string, error) {
	n, ok := s.Node(node)
	if !ok {
		return "", fmt.Errorf("no node %s", node)
	}
	pod, err := s.LCPod(ctx, node)
	if err != nil {
		return "", err
	}
	return filepath.Join(n.LogDir(), fmt.Sprintf("%s_%s_lc.log", pod.Namespace, pod.Name)), nil
}

// KillLC kills node's LC process with SIGKILL; its pod's restart policy brings it back.
func (s *Sedna) KillLC(node string) (int, error) {
	pid, err := s.LCPID(node)
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("killing LC %d: %w", pid, err)
	}
	return pid, nil
}

// FindProcess returns the one process on this machine whose command line matches.
func FindProcess(match func(argv []string) bool) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
		if match(argv) {
			found = append(found, pid)
		}
	}
	switch len(found) {
	case 0:
		return 0, errors.New("no such process")
	case 1:
		return found[0], nil
	default:
		return 0, fmt.Errorf("%d processes match: %v", len(found), found)
	}
}
