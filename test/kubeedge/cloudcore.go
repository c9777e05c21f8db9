package kubeedge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/internal/freeport"
	"github.com/sedna-go/sedna/test/localcluster"
)

const (
	// Namespace is where cloudcore keeps its CA and the join token (KubeEdge's default).
	Namespace = "kubeedge"
	// tokenSecret is the Secret cloudcore writes the edge join token to (what keadm gettoken reads).
	tokenSecret  = "tokensecret"
	startTimeout = 2 * time.Minute
)

// CloudCoreOptions configures StartCloudCore.
type CloudCoreOptions struct {
	// Dir holds cloudcore.yaml, its certificates and its log. Required; emptied first.
	Dir string
	// Binaries are from InstallBinaries.
	Binaries Binaries
	// Kubeconfig is an admin kubeconfig of the cluster (localcluster.Cluster.Kubeconfig).
	Kubeconfig string
	// Kubectl is the kubectl binary the CRDs are applied with.
	Kubectl string
	Kube    kubernetes.Interface
}

// CloudCore is a running cloudcore.
type CloudCore struct {
	// WebSocketAddr and HTTPSAddr are where edgecores connect (host:port on 127.0.0.1): the
	// message channel and the certificate endpoint.
	WebSocketAddr, HTTPSAddr string
	// CAFile is cloudcore's CA, which edgecores verify it with once they have joined.
	Dir  string
	proc *localcluster.Process
	kube kubernetes.Interface
}

// StartCloudCore applies KubeEdge's CRDs, creates namespace kubeedge, writes cloudcore's
// configuration (KubeEdge's defaults with the listeners on 127.0.0.1 and free ports, the paths in
// Dir, the iptables manager and the stream tunnel off) and starts it, returning once it has
// written the join token. The caller must call Stop.
func StartCloudCore(ctx context.Context, opts CloudCoreOptions) (*CloudCore, error) {
	logger := klog.FromContext(ctx).WithName("cloudcore")
	if err := os.RemoveAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", opts.Dir, err)
	}
	for _, d := range []string{"ca", "certs", "logs"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	if out, err := exec.CommandContext(ctx, opts.Kubectl, "--kubeconfig", opts.Kubeconfig,
		"apply", "--server-side", "-R", "-f", opts.Binaries.CRDDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("applying KubeEdge's CRDs: %w\n%s", err, out)
	}
	if _, err := opts.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}

	ports, err := freeport.Loopback(3)
	if err != nil {
		return nil, err
	}
	ws, https, monitor := ports[0], ports[1], ports[2]
	doc, err := defaultConfig(ctx, opts.Binaries.CloudCore)
	if err != nil {
		return nil, err
	}
	var s settings
	s.add("kubeAPIConfig.kubeConfig", opts.Kubeconfig)
	s.addOptional("commonConfig.monitorServer.bindAddress", "127.0.0.1:"+strconv.Itoa(monitor))
	s.add("modules.cloudHub.advertiseAddress", []string{"127.0.0.1"})
	s.add("modules.cloudHub.dnsNames", []string{"localhost"})
	s.add("modules.cloudHub.tlsCAFile", filepath.Join(opts.Dir, "ca", "rootCA.crt"))
	s.add("modules.cloudHub.tlsCAKeyFile", filepath.Join(opts.Dir, "ca", "rootCA.key"))
	s.add("modules.cloudHub.tlsCertFile", filepath.Join(opts.Dir, "certs", "server.crt"))
	s.add("modules.cloudHub.tlsPrivateKeyFile", filepath.Join(opts.Dir, "certs", "server.key"))
	s.add("modules.cloudHub.unixsocket.enable", false)
	s.add("modules.cloudHub.unixsocket.address", "unix://"+filepath.Join(opts.Dir, "kubeedge.sock"))
	s.add("modules.cloudHub.quic.enable", false)
	s.add("modules.cloudHub.websocket.address", "127.0.0.1")
	s.add("modules.cloudHub.websocket.port", ws)
	s.add("modules.cloudHub.https.address", "127.0.0.1")
	s.add("modules.cloudHub.https.port", https)
	// The iptables manager adds DNAT rules to this machine for the stream tunnel; the stream
	// (kubectl logs/exec to edge pods) is not used here.
	s.add("modules.iptablesManager.enable", false)
	s.add("modules.cloudStream.enable", false)
	if err := s.apply(doc); err != nil {
		return nil, fmt.Errorf("cloudcore configuration: %w", err)
	}
	configPath := filepath.Join(opts.Dir, "cloudcore.yaml")
	if err := writeConfig(configPath, doc); err != nil {
		return nil, err
	}
	proc, err := localcluster.StartProcess(ctx, "cloudcore", opts.Binaries.CloudCore, filepath.Join(opts.Dir, "logs"),
		[]string{"--config=" + configPath, "-v=2"})
	if err != nil {
		return nil, err
	}
	c := &CloudCore{
		WebSocketAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ws)),
		HTTPSAddr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(https)),
		Dir:           opts.Dir, proc: proc, kube: opts.Kube,
	}
	if _, err := c.Token(ctx); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	// The certificate endpoint must answer before an edgecore can join.
	if err := waitListening(ctx, proc, c.HTTPSAddr); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	logger.Info("cloudcore is up", "websocket", c.WebSocketAddr, "https", c.HTTPSAddr, "log", proc.LogPath())
	return c, nil
}

// Token waits for and returns the join token cloudcore publishes in Secret kubeedge/tokensecret.
func (c *CloudCore) Token(ctx context.Context) (string, error) {
	var token string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, startTimeout, true, func(ctx context.Context) (bool, error) {
		if done, exitErr := c.proc.Exited(); done {
			return false, fmt.Errorf("cloudcore exited (%v):\n%s", exitErr, c.proc.LogTail())
		}
		secret, err := c.kube.CoreV1().Secrets(Namespace).Get(ctx, tokenSecret, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // not written yet
		}
		token = string(secret.Data["tokendata"])
		return token != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("waiting for cloudcore's join token (Secret %s/%s): %w\n%s", Namespace, tokenSecret, err, c.proc.LogTail())
	}
	return token, nil
}

// LogPath is cloudcore's log.
func (c *CloudCore) LogPath() string { return c.proc.LogPath() }

// Stop stops cloudcore. Its objects go with the cluster.
func (c *CloudCore) Stop() error {
	if err := c.proc.Stop(); err != nil {
		return fmt.Errorf("stopping cloudcore: %w", err)
	}
	return nil
}

func waitListening(ctx context.Context, proc *localcluster.Process, addr string) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, startTimeout, true, func(ctx context.Context) (bool, error) {
		if done, exitErr := proc.Exited(); done {
			return false, fmt.Errorf("exited (%v)", exitErr)
		}
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet
		}
		_ = conn.Close()
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w\n%s", addr, err, proc.LogTail())
	}
	return nil
}
