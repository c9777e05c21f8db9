//go:build e2ekubeedge

package kubeedge_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/test/integration/framework"
	"github.com/sedna-go/sedna/test/localcluster"
)

// gmProcess is sedna-gm run as a process of this machine in place of the Deployment's pods, which
// have no cloud node to run on in this tier (see docs/install.md, "What is tested"): the
// configuration of build/gm/config.yaml, the certificate install.sh generated (Secret
// sedna/sedna-gm-tls), and the permissions of GM's service account.
type gmProcess struct {
	proc       *localcluster.Process
	metricsURL string
}

// startGM starts sedna-gm with its channel on channelAddr (host:port) and waits until it is ready.
func startGM(ctx context.Context, kube kubernetes.Interface, cfg *rest.Config, bin, dir, channelAddr string) (*gmProcess, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(localcluster.RepoRoot(), "build", "gm", "config.yaml"))
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		return nil, fmt.Errorf("decoding build/gm/config.yaml: %w", err)
	}
	var gm config.Config
	if err := yaml.UnmarshalStrict([]byte(cm.Data["gm.yaml"]), &gm); err != nil {
		return nil, fmt.Errorf("decoding gm.yaml of build/gm/config.yaml: %w", err)
	}
	secret, err := kube.CoreV1().Secrets("sedna").Get(ctx, "sedna-gm-tls", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading GM's certificate: %w", err)
	}
	for name, key := range map[string]string{"tls.crt": corev1.TLSCertKey, "tls.key": corev1.TLSPrivateKeyKey} {
		if err := os.WriteFile(filepath.Join(dir, name), secret.Data[key], 0o600); err != nil {
			return nil, err
		}
	}
	token, err := kube.CoreV1().ServiceAccounts("sedna").CreateToken(ctx, "sedna-gm", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600 * 2)},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("requesting a token of sedna/sedna-gm: %w", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["sedna-gm"] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "sedna-gm"}
	kc.CurrentContext = "local"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		return nil, err
	}
	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = framework.FreePort(); err != nil {
			return nil, err
		}
	}
	host, port, ok := strings.Cut(channelAddr, ":")
	if !ok {
		return nil, fmt.Errorf("channel address %q is not host:port", channelAddr)
	}
	gm.KubeConfig = kubeconfig
	gm.WebSocket.Address = host
	if gm.WebSocket.Port, err = strconv.Atoi(port); err != nil {
		return nil, err
	}
	gm.WebSocket.TLSCertFile, gm.WebSocket.TLSKeyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	gm.MetricsAddress = "127.0.0.1:" + strconv.Itoa(ports[0])
	gm.HealthAddress = "127.0.0.1:" + strconv.Itoa(ports[1])
	data, err := yaml.Marshal(gm)
	if err != nil {
		return nil, err
	}
	configFile := filepath.Join(dir, "gm.yaml")
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		return nil, err
	}
	proc, err := localcluster.StartProcess(ctx, "sedna-gm", filepath.Join(localcluster.RepoRoot(), "_output", "bin", "sedna-gm"),
		dir, []string{"--config=" + configFile, "-v=2"})
	if err != nil {
		return nil, err
	}
	healthURL := "http://" + gm.HealthAddress + "/readyz"
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if done, exitErr := proc.Exited(); done {
			return false, fmt.Errorf("sedna-gm exited (%v)", exitErr)
		}
		resp, err := http.Get(healthURL) //nolint:noctx // a local health check
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		_ = proc.Stop()
		return nil, fmt.Errorf("waiting for sedna-gm: %w\n%s", err, proc.LogTail())
	}
	return &gmProcess{proc: proc, metricsURL: "http://" + gm.MetricsAddress + "/metrics"}, nil
}

// metric is the value of one sample of GM's metrics, 0 if absent.
func (g *gmProcess) metric(ctx context.Context, sample string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, sc.Err()
}
