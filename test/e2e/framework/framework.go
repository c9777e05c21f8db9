// Package framework runs the e2e suite against one local Sedna (test/localsedna): real
// kube-apiserver, controllers and scheduler, sedna-gm and sedna-lc processes, and workers run as
// processes by the process nodes. Each test gets its own namespace; when a test fails, its
// namespace's Sedna objects, events, pods, worker logs and the GM and LC logs are printed, so a
// failure can be debugged without rerunning.
package framework

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
)

// Sedna is the suite's local Sedna, set by Main.
var Sedna *localsedna.Sedna

var keepDir = flag.Bool("e2e.keep", false, "keep the suite's working directory (logs, node roots) after the run")

// Main builds the binaries, starts local Sedna, runs the tests and stops everything. Call it
// from TestMain.
func Main(m *testing.M) int {
	flag.Parse()
	klog.InitFlags(nil)
	root := localcluster.RepoRoot()
	binDir := filepath.Join(root, "_output", "bin")
	// Always rebuild (cheap when cached), so the suite never runs stale processes.
	build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/...", "./examples/...", "./test/chaos/chaos-reporter")
	build.Dir, build.Stdout, build.Stderr = root, os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building the binaries: %v\n", err)
		return 1
	}
	dir := filepath.Join(root, "_output", "e2e")
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	start := time.Now()
	var err error
	Sedna, err = localsedna.Start(ctx, localsedna.Options{Dir: dir, EdgeNodes: 3, DatasetCheckPeriod: time.Second,
		// The short fault campaign counts the reports GM records when it runs on this local Sedna.
		LogRecordedReports: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting local Sedna: %v\n", err)
		return 1
	}
	fmt.Printf("local Sedna up in %s (working directory %s)\n", time.Since(start).Round(time.Millisecond), dir)
	// Ctrl-C or a termination signal stops local Sedna before the process goes: its pods'
	// processes would otherwise outlive the suite and hold their ports.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "%s: stopping local Sedna\n", sig)
		_ = Sedna.Stop() // exiting anyway
		os.Exit(1)
	}()
	code := m.Run()
	signal.Stop(signals)
	if err := Sedna.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping local Sedna: %v\n", err)
		code = 1
	}
	if code == 0 && !*keepDir {
		_ = os.RemoveAll(dir) // logs of a green run are not needed
	}
	return code
}

// NewNamespace creates a namespace for the test. When the test ends it is deleted; if the test
// failed, diagnostics are printed first.
func NewNamespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(fmt.Sprintf("e2e-%s-%s", sanitize(t.Name()), rand.String(4)))
	ctx := context.Background()
	_, err := Sedna.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(Diagnostics(ctx, name))
		}
		if err := Sedna.Kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Logf("deleting namespace %s: %v", name, err)
			return
		}
		// Wait until its pods are gone, so the next test's workers find their ports free (pods on
		// one process node share its address).
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if _, err := Sedna.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("namespace %s still exists 2 minutes after its deletion", name)
	})
	return name
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 40 {
		out = out[:40]
	}
	return out
}

// Kubectl runs kubectl against the suite's cluster and fails the test on error.
func Kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := Sedna.Kubectl(context.Background(), args...)
	require.NoError(t, err, "kubectl %s:\n%s", strings.Join(args, " "), out)
	return out
}

// Apply applies a manifest file (e.g. from examples/) into namespace.
func Apply(t *testing.T, namespace, path string) {
	t.Helper()
	Kubectl(t, "apply", "--server-side", "-n", namespace, "-f", path)
}

// ApplyYAML applies manifest text into namespace.
func ApplyYAML(t *testing.T, namespace, manifest string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "manifest.yaml")
	require.NoError(t, os.WriteFile(path, []byte(manifest), 0o644))
	Apply(t, namespace, path)
}

// Eventually polls check until it returns true or timeout passes, then fails the test with
// check's last message, which should say what was seen.
func Eventually(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, msg := check()
		if ok {
			return
		}
		last = msg
		if time.Now().After(deadline) {
			require.FailNowf(t, "timed out", "waiting %s for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Diagnostics describes a namespace and the Sedna components for a failed test.
func Diagnostics(ctx context.Context, namespace string) string {
	var b strings.Builder
	section := func(title, body string) {
		fmt.Fprintf(&b, "\n===== %s =====\n%s\n", title, strings.TrimRight(body, "\n"))
	}
	kubectl := func(args ...string) string {
		out, err := Sedna.Kubectl(ctx, args...)
		if err != nil {
			return fmt.Sprintf("%s(kubectl: %v)", out, err)
		}
		return out
	}
	section("Sedna objects in "+namespace, kubectl("get", "sedna", "-n", namespace, "-o", "yaml"))
	section("Deployments, Services, pods in "+namespace, kubectl("get", "deployments,services,pods", "-n", namespace, "-o", "wide"))
	section("Pod statuses in "+namespace, kubectl("get", "pods", "-n", namespace, "-o", "jsonpath={range .items[*]}{.metadata.name}{\" on \"}{.spec.nodeName}{\": \"}{.status}{\"\\n\"}{end}"))
	section("Events in "+namespace, kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp"))
	section("Pods in sedna", kubectl("get", "pods", "-n", localsedna.SednaNamespace, "-o", "wide"))
	for _, node := range Sedna.Nodes {
		logs, _ := filepath.Glob(filepath.Join(node.LogDir(), "*.log"))
		sort.Strings(logs)
		for _, log := range logs {
			base := filepath.Base(log)
			if strings.HasPrefix(base, namespace+"_") || strings.HasPrefix(base, localsedna.SednaNamespace+"_") {
				section(fmt.Sprintf("log %s on %s", base, node.Name), tailFile(log, 6000))
			}
		}
	}
	section("sedna-gm log", tailFile(Sedna.GMLog(), 12000))
	return b.String()
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(data) > n {
		data = data[len(data)-n:]
		if i := strings.IndexByte(string(data), '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}

// ImageUser is the user and group every image of hack/images runs as.
const ImageUser = 65532

// PrepareHostPaths does on node what the examples' READMEs tell the administrator of a real node
// ("On a real cluster"): every hostPath directory the manifest's pods mount, and a job's outputDir
// (GM mounts it into the workers), is created and given
// to the images' user and group, setgid (sudo install -d -o 65532 -g 65532 -m 2775 <dir>), so the
// directories the LC makes in them are the group's. A kubelet would create a missing
// one root:root 0755, which the workers, running as 65532, cannot write; the process nodes do the
// same when the suite runs as root.
//
// extra names more directories GM mounts into the workers, such as a Model's (its url's directory).
func PrepareHostPaths(t *testing.T, node localsedna.Node, manifest string, extra ...string) {
	t.Helper()
	data, err := os.ReadFile(manifest)
	require.NoError(t, err)
	paths := map[string]bool{}
	for _, p := range extra {
		paths[p] = true
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj any
		if err := dec.Decode(&obj); err != nil {
			require.ErrorIs(t, err, io.EOF, "decoding %s", manifest)
			break
		}
		collectHostPaths(obj, paths)
	}
	require.NotEmpty(t, paths, "%s mounts no hostPath", manifest)
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted) // parents first
	for _, p := range sorted {
		dir := node.HostPath(p)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		if os.Geteuid() == 0 {
			require.NoError(t, os.Chown(dir, ImageUser, ImageUser))
		}
		require.NoError(t, os.Chmod(dir, 0o775|os.ModeSetgid))
	}
}

func collectHostPaths(node any, out map[string]bool) {
	switch n := node.(type) {
	case map[string]any:
		if hp, ok := n["hostPath"].(map[string]any); ok {
			if p, ok := hp["path"].(string); ok {
				out[p] = true
			}
		}
		// A job's outputDir is mounted into its workers by GM as a hostPath too.
		if p, ok := n["outputDir"].(string); ok && strings.HasPrefix(p, "/") {
			out[p] = true
		}
		for _, v := range n {
			collectHostPaths(v, out)
		}
	case []any:
		for _, v := range n {
			collectHostPaths(v, out)
		}
	}
}
