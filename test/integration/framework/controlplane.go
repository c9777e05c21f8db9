package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
)

// requiredBinaries are what hack/install-test-binaries.sh provides and the tests use.
var requiredBinaries = []string{"etcd", "kube-apiserver", "kubectl"}

// ControlPlane is a running etcd and kube-apiserver with Sedna's CRDs installed.
type ControlPlane struct {
	Config         *rest.Config
	KubeconfigPath string
	RepoRoot       string
	Kube           kubernetes.Interface
	Sedna          sednaclientset.Interface
	Dynamic        dynamic.Interface

	env     *envtest.Environment
	workDir string
	kubectl string
}

// RepoRoot returns the repository's top directory, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// AssetsDir is where the control-plane binaries are looked for.
func AssetsDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), "_output", "bin")
}

// Start starts etcd and kube-apiserver, writes a kubeconfig and installs build/crds with
// `kubectl create`. The caller must call Stop.
func Start(ctx context.Context) (*ControlPlane, error) {
	assets := AssetsDir()
	for _, name := range requiredBinaries {
		if _, err := os.Stat(filepath.Join(assets, name)); err != nil {
			return nil, fmt.Errorf("control-plane binary %s missing in %s (run `make install-test-binaries`): %w", name, assets, err)
		}
	}
	workDir, err := os.MkdirTemp("", "sedna-integration-")
	if err != nil {
		return nil, fmt.Errorf("creating work directory: %w", err)
	}
	cp := &ControlPlane{
		RepoRoot: RepoRoot(),
		env:      &envtest.Environment{BinaryAssetsDirectory: assets, ControlPlaneStartTimeout: time.Minute},
		workDir:  workDir,
		kubectl:  filepath.Join(assets, "kubectl"),
	}
	cfg, err := cp.env.Start()
	if err != nil {
		_ = os.RemoveAll(workDir) // best effort: the start error is what matters
		return nil, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	cp.Config = cfg
	if err := cp.init(ctx); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return cp, nil
}

func (cp *ControlPlane) init(ctx context.Context) error {
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = 200, 400
	var err error
	if cp.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("building kube client: %w", err)
	}
	if cp.Sedna, err = sednaclientset.NewForConfig(cfg); err != nil {
		return fmt.Errorf("building sedna client: %w", err)
	}
	if cp.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return fmt.Errorf("building dynamic client: %w", err)
	}
	cp.KubeconfigPath = filepath.Join(cp.workDir, "kubeconfig")
	if err := os.WriteFile(cp.KubeconfigPath, cp.env.KubeConfig, 0o600); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return cp.InstallCRDs(ctx)
}

// CRDDir is the directory of the generated CRDs.
func (cp *ControlPlane) CRDDir() string { return filepath.Join(cp.RepoRoot, "build", "crds") }

// InstallCRDs creates build/crds with `kubectl create` and waits until every kind is served.
func (cp *ControlPlane) InstallCRDs(ctx context.Context) error {
	if out, err := cp.Kubectl(ctx, "create", "-f", cp.CRDDir()); err != nil {
		return fmt.Errorf("kubectl create -f build/crds: %w\n%s", err, out)
	}
	opts := envtest.CRDInstallOptions{
		Paths: []string{cp.CRDDir()}, ErrorIfPathMissing: true,
		MaxTime: time.Minute, PollInterval: 100 * time.Millisecond,
	}
	if err := envtest.ReadCRDFiles(&opts); err != nil {
		return fmt.Errorf("reading build/crds: %w", err)
	}
	if err := envtest.WaitForCRDs(cp.Config, opts.CRDs, opts); err != nil {
		return fmt.Errorf("waiting for the CRDs to be served: %w", err)
	}
	return nil
}

// CRDs reads the generated CRDs from build/crds.
func (cp *ControlPlane) CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	opts := envtest.CRDInstallOptions{Paths: []string{cp.CRDDir()}, ErrorIfPathMissing: true}
	if err := envtest.ReadCRDFiles(&opts); err != nil {
		return nil, fmt.Errorf("reading build/crds: %w", err)
	}
	return opts.CRDs, nil
}

// Kubectl runs kubectl against the control plane and returns its combined output.
func (cp *ControlPlane) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, cp.kubectl, append([]string{"--kubeconfig", cp.KubeconfigPath}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Stop stops the control plane and removes its files.
func (cp *ControlPlane) Stop() error {
	err := cp.env.Stop()
	if rmErr := os.RemoveAll(cp.workDir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("removing %s: %w", cp.workDir, rmErr))
	}
	return err
}
