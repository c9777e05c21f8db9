package kubeedge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sedna-go/sedna/test/localcluster"
)

// Version is the KubeEdge release hack/install-kubeedge.sh builds (hack/tools/kubeedge pins it).
const Version = "v1.23.1"

// Binaries are the cached KubeEdge build.
type Binaries struct {
	CloudCore, EdgeCore string
	// CRDDir is KubeEdge's build/crds of the same module version (devices, reliablesyncs, ...).
	CRDDir string
}

// InstallBinaries runs hack/install-kubeedge.sh, which builds cloudcore and edgecore into the
// test-binary cache unless they are there (about nine minutes cold), and returns their paths.
func InstallBinaries(ctx context.Context) (Binaries, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(localcluster.RepoRoot(), "hack", "install-kubeedge.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Binaries{}, fmt.Errorf("hack/install-kubeedge.sh: %w\n%s", err, stderr.String())
	}
	dir := strings.TrimSpace(string(out))
	b := Binaries{
		CloudCore: filepath.Join(dir, "cloudcore"),
		EdgeCore:  filepath.Join(dir, "edgecore"),
		CRDDir:    filepath.Join(dir, "crds"),
	}
	for _, p := range []string{b.CloudCore, b.EdgeCore, b.CRDDir} {
		if _, err := os.Stat(p); err != nil {
			return Binaries{}, fmt.Errorf("hack/install-kubeedge.sh left no %s: %w", p, err)
		}
	}
	return b, nil
}
