package localsedna

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
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
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/test/integration/framework"
	"github.com/sedna-go/sedna/test/localcluster"
)

// gmIdentity is GM's leader-election identity. It is fixed, so a GM restarted after a crash takes
// its own Lease back at once instead of waiting for it to expire.
const gmIdentity = "local-sedna-gm"

// gmProcess is a running sedna-gm and where to reach it.
type gmProcess struct {
	proc                      *localcluster.Process
	channelAddr, metricsURL   string
	healthURL, configFile, ca string
}

// GMAddress is the channel address LCs dial (host:port).
func (s *Sedna) GMAddress() string {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	if s.gm == nil {
		return ""
	}
	return s.gm.channelAddr
}

// GMCAFile is the CA that signed GM's channel certificate.
func (s *Sedna) GMCAFile() string { return filepath.Join(s.opts.Dir, "gm", "ca.crt") }

// GMLog is the path of GM's log.
func (s *Sedna) GMLog() string { return filepath.Join(s.LogDir(), "sedna-gm.log") }

// StartGM starts sedna-gm and waits until it is ready (leader, primed, serving LCs). The first
// call writes GM's configuration, certificate and service-account kubeconfig; later calls (after
// StopGM or KillGM) restart the same GM on the same addresses.
func (s *Sedna) StartGM(ctx context.Context) error {
	return s.startGM(ctx, true)
}

// startGM is StartGM; without waitReady it returns once the process runs (a GM that must wait
// for another's Lease to expire is not ready until then).
func (s *Sedna) startGM(ctx context.Context, waitReady bool) error {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	start := localcluster.StartProcess
	if s.gm != nil {
		if done, _ := s.gm.proc.Exited(); !done {
			return errors.New("sedna-gm is already running")
		}
		start = localcluster.RestartProcess // the log of every run is kept
	} else {
		gm, err := s.configureGM(ctx)
		if err != nil {
			return err
		}
		s.gm = gm
	}
	proc, err := start(ctx, "sedna-gm", filepath.Join(s.opts.BinDir, "sedna-gm"), s.LogDir(), s.gmArgs(s.gm.configFile, gmIdentity))
	if err != nil {
		return err
	}
	s.gm.proc = proc
	if !waitReady {
		return nil
	}
	client := &http.Client{Timeout: 2 * time.Second}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		if done, exitErr := proc.Exited(); done {
			return false, fmt.Errorf("sedna-gm exited (%v); log tail:\n%s", exitErr, proc.LogTail())
		}
		resp, err := client.Get(s.gm.healthURL)
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for sedna-gm to be ready: %w\n%s", err, proc.LogTail())
	}
	return nil
}

// gmArgs are sedna-gm's arguments; with Options.LogRecordedReports every report GM records is
// logged (workerreports at V(4)), which the fault campaign counts by report ID (test/chaos).
func (s *Sedna) gmArgs(configFile, identity string) []string {
	args := []string{"--config=" + configFile, "--identity=" + identity, "-v=2"}
	if s.opts.LogRecordedReports {
		args = append(args, "--vmodule=workerreports=4,marks=4")
	}
	return args
}

// StopGM stops GM gracefully (it releases its Lease). A stopped GM is not an error.
func (s *Sedna) StopGM() error {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	if s.gm == nil || s.gm.proc == nil {
		return nil
	}
	return s.gm.proc.Stop()
}

// KillGM kills GM with SIGKILL, as a crash or an OOM kill would.
func (s *Sedna) KillGM() error {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	if s.gm == nil || s.gm.proc == nil {
		return errors.New("sedna-gm was never started")
	}
	return s.gm.proc.Kill()
}

// GMPID is the process ID of the running GM, 0 if none.
func (s *Sedna) GMPID() int {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	if s.gm == nil || s.gm.proc == nil {
		return 0
	}
	if done, _ := s.gm.proc.Exited(); done {
		return 0
	}
	return s.gm.proc.PID()
}

// GMMetric returns the value of one sample of GM's metrics (e.g.
// `sedna_gm_channel_connected_nodes`), 0 if absent.
func (s *Sedna) GMMetric(ctx context.Context, sample string) (float64, error) {
	s.gmMu.Lock()
	url := ""
	if s.gm != nil {
		url = s.gm.metricsURL
	}
	s.gmMu.Unlock()
	return scrapeMetric(ctx, url, sample)
}

// scrapeMetric returns the value of one sample of the metrics at url, 0 if absent.
func scrapeMetric(ctx context.Context, url, sample string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scraping GM's metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), sample+" "); ok {
			return strconv.ParseFloat(value, 64)
		}
	}
	return 0, scanner.Err()
}

// configureGM writes GM's files: build/gm/config.yaml's configuration with local addresses, a
// channel certificate, and a kubeconfig of GM's service account (so GM runs with exactly the
// permissions of build/gm/rbac.yaml).
func (s *Sedna) configureGM(ctx context.Context) (*gmProcess, error) {
	dir := filepath.Join(s.opts.Dir, "gm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg, err := manifestGMConfig(filepath.Join(localcluster.RepoRoot(), "build", "gm", "config.yaml"))
	if err != nil {
		return nil, err
	}
	cert, err := framework.WriteServingCert(dir, "gm.sedna.svc", "gm.sedna", "127.0.0.1", s.opts.cloudHost())
	if err != nil {
		return nil, fmt.Errorf("writing GM's certificate: %w", err)
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = framework.FreePort(); err != nil {
			return nil, err
		}
	}
	kubeconfig, err := s.serviceAccountKubeconfig(ctx, dir, SednaNamespace, "sedna-gm")
	if err != nil {
		return nil, err
	}
	cfg.KubeConfig = kubeconfig
	cfg.WebSocket.Address, cfg.WebSocket.Port = s.opts.cloudHost(), ports[0]
	cfg.WebSocket.TLSCertFile, cfg.WebSocket.TLSKeyFile = cert.CertFile, cert.KeyFile
	cfg.MetricsAddress = fmt.Sprintf("127.0.0.1:%d", ports[1])
	cfg.HealthAddress = fmt.Sprintf("127.0.0.1:%d", ports[2])
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding GM's configuration: %w", err)
	}
	configFile := filepath.Join(dir, "gm.yaml")
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		return nil, err
	}
	return &gmProcess{
		channelAddr: net.JoinHostPort(s.opts.cloudHost(), strconv.Itoa(ports[0])),
		metricsURL:  fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
		healthURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]),
		configFile:  configFile, ca: cert.CAFile,
	}, nil
}

// manifestGMConfig reads gm.yaml out of the ConfigMap in build/gm/config.yaml.
func manifestGMConfig(path string) (*config.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	data, ok := cm.Data["gm.yaml"]
	if !ok {
		return nil, fmt.Errorf("%s has no gm.yaml key", path)
	}
	var cfg config.Config
	if err := yaml.UnmarshalStrict([]byte(data), &cfg); err != nil {
		return nil, fmt.Errorf("decoding gm.yaml of %s: %w", path, err)
	}
	return &cfg, nil
}

// serviceAccountKubeconfig writes a kubeconfig with a TokenRequest token of namespace/name.
func (s *Sedna) serviceAccountKubeconfig(ctx context.Context, dir, namespace, name string) (string, error) {
	token, err := s.Kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](48 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for %s/%s: %w", namespace, name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: s.Cluster.Config.Host, CertificateAuthorityData: s.Cluster.Config.CAData}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: name}
	cfg.CurrentContext = "local"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing the kubeconfig of %s/%s: %w", namespace, name, err)
	}
	return path, os.Chmod(path, 0o600)
}
