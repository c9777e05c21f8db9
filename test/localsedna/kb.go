package localsedna

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/sedna-go/sedna/test/localcluster"
)

const (
	// KBTokenSecret is the Secret build/kb reads its tokens from and GM's
	// knowledgeBaseServer.tokenSecret names.
	KBTokenSecret = "sedna-kb-token"
	// KBService is build/kb's Service, port KBPort.
	KBService = "kb"
	KBPort    = 9020
	// kbClaim is build/kb's PersistentVolumeClaim; kbVolume the PersistentVolume the harness
	// creates for it, as a cluster's storage administrator would, at kbHostPath on the cloud node.
	kbClaim    = "sedna-kb-data"
	kbVolume   = "sedna-kb-data-cloud-node"
	kbHostPath = "/var/lib/sedna-kb"
)

// KBTokens are the knowledge base's write and read tokens (the keys token and read-token of
// KBTokenSecret).
type KBTokens struct {
	Write, Read string
}

// startKB installs build/kb unmodified, with what an administrator provides first: the token
// Secret (random tokens) and a PersistentVolume for its claim (a local volume on the cloud node: a
// cluster without a provisioner gets its volumes this way). It returns once the knowledge base
// answers through its Service.
func (s *Sedna) startKB(ctx context.Context) error {
	write, err := randomToken()
	if err != nil {
		return err
	}
	read, err := randomToken()
	if err != nil {
		return err
	}
	s.kbTokens = KBTokens{Write: write, Read: read}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: KBTokenSecret, Namespace: SednaNamespace},
		Data: map[string][]byte{"token": []byte(write), "read-token": []byte(read)}}
	if _, err := s.Kube.CoreV1().Secrets(SednaNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the knowledge base's token Secret: %w", err)
	}
	volume := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: kbVolume},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			// A local volume, not a hostPath one: the kubelet gives a local volume to the pod's
			// fsGroup (build/kb runs as 65532 with fsGroup 65532), a hostPath one it leaves root's,
			// which the knowledge base cannot write (docs/install.md).
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: kbHostPath}},
			// A local path exists on one node: pods using it must run there.
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{CloudNode}}},
			}}}},
		},
	}
	// The administrator makes the directory first (root's, 0755); the kubelet refuses a local
	// volume whose path does not exist.
	cloud, ok := s.Node(CloudNode)
	if !ok {
		return fmt.Errorf("no node %s for the knowledge base's volume", CloudNode)
	}
	if err := os.MkdirAll(cloud.HostPath(kbHostPath), 0o755); err != nil {
		return fmt.Errorf("creating the knowledge base's volume directory: %w", err)
	}
	if _, err := s.Kube.CoreV1().PersistentVolumes().Create(ctx, volume, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the knowledge base's PersistentVolume: %w", err)
	}
	if out, err := s.Kubectl(ctx, "apply", "-f", filepath.Join(localcluster.RepoRoot(), "build", "kb", "kb.yaml")); err != nil {
		return fmt.Errorf("installing build/kb: %w\n%s", err, out)
	}
	if err := s.Proxy.WaitForService(ctx, SednaNamespace, KBService); err != nil {
		return err
	}
	return s.WaitForKB(ctx)
}

func randomToken() (string, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generating a token: %w", err)
	}
	return hex.EncodeToString(raw), nil
}

// KBTokens returns the knowledge base's tokens.
func (s *Sedna) KBTokens() KBTokens { return s.kbTokens }

// KBURL is the knowledge base's Service URL as this machine reaches it (its cluster IP); pods
// reach it as http://kb.sedna:9020.
func (s *Sedna) KBURL(ctx context.Context) (string, error) {
	svc, err := s.Kube.CoreV1().Services(SednaNamespace).Get(ctx, KBService, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("getting the knowledge base's Service: %w", err)
	}
	return fmt.Sprintf("http://%s:%d", svc.Spec.ClusterIP, KBPort), nil
}

// WaitForKB waits until the knowledge base answers /healthz through its Service.
func (s *Sedna) WaitForKB(ctx context.Context) error {
	url, err := s.KBURL(ctx)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	last := ""
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		_ = resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		pods, _ := s.Kubectl(ctx, "get", "pods,pvc", "-n", SednaNamespace, "-o", "wide")
		return fmt.Errorf("waiting for the knowledge base at %s (last: %s): %w\n%s", url, last, err, pods)
	}
	return nil
}

// KBPID finds the sedna-kb process (there is one knowledge base).
func (s *Sedna) KBPID() (int, error) {
	// Only this Sedna's: another one on the machine (a parallel suite) runs its own.
	bin := filepath.Join(s.opts.BinDir, "sedna-kb")
	return FindProcess(func(argv []string) bool { return argv[0] == bin })
}

// KillKB kills the knowledge base with SIGKILL; its pod's restart policy brings it back, on the
// same claim.
func (s *Sedna) KillKB() (int, error) {
	pid, err := s.KBPID()
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("killing the knowledge base %d: %w", pid, err)
	}
	return pid, nil
}

// CopyKBTokenSecret copies the knowledge base's token Secret into namespace, as an administrator
// does for each namespace that runs lifelong learning jobs (GM's tokenSecret is read there).
func (s *Sedna) CopyKBTokenSecret(ctx context.Context, namespace string) error {
	if namespace == SednaNamespace {
		return errors.New("the token Secret is in the sedna namespace already")
	}
	secret, err := s.Kube.CoreV1().Secrets(SednaNamespace).Get(ctx, KBTokenSecret, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting the knowledge base's token Secret: %w", err)
	}
	copied := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: KBTokenSecret, Namespace: namespace}, Data: secret.Data}
	if _, err := s.Kube.CoreV1().Secrets(namespace).Create(ctx, copied, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("copying the knowledge base's token Secret to %s: %w", namespace, err)
	}
	return nil
}
