package localsedna_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
)

// hack/local-up's program runs until SIGINT and then leaves nothing running: no control-plane
// process, no GM, no LC, no worker. Every process it starts names its working directory on its
// command line (data dirs, configs, certificates, rewritten volume paths), so any survivor is
// found by scanning /proc for that directory.
func TestLocalUpStopsEverythingOnInterrupt(t *testing.T) {
	root := localcluster.RepoRoot()
	bin := filepath.Join(t.TempDir(), "local-up")
	build := exec.Command("go", "build", "-o", bin, "./hack/local-up")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, name := range []string{"sedna-gm", "sedna-lc", "sedna-kb"} {
		build := exec.Command("go", "build", "-o", filepath.Join(root, "_output", "bin", name), "./cmd/"+name)
		build.Dir = root
		out, err := build.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}

	dir := t.TempDir()
	cmd := exec.Command(bin, "--dir", dir, "--edge-nodes", "1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	banner := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stdout)
		seen := false
		for scanner.Scan() {
			if !seen && strings.Contains(scanner.Text(), "Press Ctrl-C to stop everything") {
				seen = true
				close(banner)
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case <-banner:
	case err := <-exited:
		t.Fatalf("local-up exited before it was up: %v", err)
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("local-up did not come up in 3 minutes")
	}
	running := processesUnder(t, dir)
	require.NotEmpty(t, running, "found none of local-up's processes while it ran: the scan cannot see them")
	t.Logf("running under %s: %d processes", dir, len(running))

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "local-up failed on SIGINT")
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("local-up did not stop within 2 minutes of SIGINT")
	}
	require.Empty(t, processesUnder(t, dir), "processes left running after local-up exited")
}

// processesUnder lists the command lines of processes that name dir.
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	_, err := localsedna.FindProcess(func(argv []string) bool {
		line := strings.Join(argv, " ")
		if strings.Contains(line, dir) {
			found = append(found, line)
		}
		return false
	})
	require.ErrorContains(t, err, "no such process")
	return found
}
