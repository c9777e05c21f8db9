package benchmark

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// rssKiB reads a process's resident set size.
func rssKiB(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if v, ok := strings.CutPrefix(scanner.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkLCFootprint builds sedna-lc, connects it to a GM channel over TLS and reports its RSS
// idle and after GM sent it 100 resources, 10 of them datasets it monitors.
func BenchmarkLCFootprint(b *testing.B) {
	dir := b.TempDir()
	binary := filepath.Join(dir, "sedna-lc")
	build := exec.Command("go", "build", "-o", binary, "./cmd/sedna-lc")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building sedna-lc: %v\n%s", err, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub := messagelayer.NewHub(messagelayer.Options{}, nil)
	srv := httptest.NewTLSServer(messagelayer.NewServer(ctx, hub, &messagelayer.StaticTokenAuthenticator{Tokens: map[string]string{"lc-token": "edge-1"}}))
	defer srv.Close()
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		b.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("lc-token"), 0o600); err != nil {
		b.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "data"), 0o755); err != nil {
		b.Fatal(err)
	}
	lc := exec.Command(binary, "--gm-address", strings.TrimPrefix(srv.URL, "https://"), "--node-name", "edge-1",
		"--bind-port", strconv.Itoa(freePort(b)), "--bind-address", "127.0.0.1", "--rootfs", rootfs,
		"--token-file", tokenFile, "--ca-file", caFile, "--server-name", "example.com",
		"--dataset-check-period", "1s", "--allowed-data-roots", "/data")
	lc.Stderr = os.Stderr
	if err := lc.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = lc.Process.Kill()
		_ = lc.Wait()
	}()
	waitFor(b, func() bool { return len(hub.ConnectedNodes()) == 1 }, "the LC did not connect")
	time.Sleep(2 * time.Second)
	idle := sampleRSS(b, lc.Process.Pid)

	for i := range 10 {
		index := filepath.Join(rootfs, "data", fmt.Sprintf("train-%d.txt", i))
		var lines strings.Builder
		for j := range 1000 {
			fmt.Fprintf(&lines, "images/%d/%d.jpg %d\n", i, j, j%10)
		}
		if err := os.WriteFile(index, []byte(lines.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		obj := fmt.Sprintf(`{"apiVersion":"sedna.io/v1alpha1","kind":"Dataset","metadata":{"name":"ds-%d","namespace":"default","resourceVersion":"%d"},"spec":{"url":"/data/train-%d.txt","format":"txt","nodeName":"edge-1"}}`, i, i+1, i)
		hub.Publish(channel.Key{Kind: "dataset", Namespace: "default", Name: fmt.Sprintf("ds-%d", i)}, uint64(i+1), []byte(obj), "edge-1")
	}
	for i := range 90 {
		obj := fmt.Sprintf(`{"apiVersion":"sedna.io/v1alpha1","kind":"Model","metadata":{"name":"m-%d","namespace":"default","resourceVersion":"%d"},"spec":{"url":"/models/m-%d/model.pb","format":"pb"}}`, i, i+100, i)
		hub.Publish(channel.Key{Kind: "model", Namespace: "default", Name: fmt.Sprintf("m-%d", i)}, uint64(i+100), []byte(obj), "edge-1")
	}
	time.Sleep(5 * time.Second) // the resources are stored and every dataset counted a few times
	loaded := sampleRSS(b, lc.Process.Pid)

	b.ResetTimer()
	for range b.N {
		if _, err := rssKiB(lc.Process.Pid); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(idle)/1024, "idle-RSS-MiB")
	b.ReportMetric(float64(loaded)/1024, "loaded-RSS-MiB")
}

func sampleRSS(b *testing.B, pid int) int {
	b.Helper()
	rss, err := rssKiB(pid)
	if err != nil {
		b.Fatal(err)
	}
	return rss
}

func waitFor(b *testing.B, cond func() bool, msg string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
