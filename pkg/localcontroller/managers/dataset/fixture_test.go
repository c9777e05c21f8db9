package dataset

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/managertest"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

const (
	testNamespace = "default"
	testPeriod    = 10 * time.Millisecond
	// waitFor bounds every wait; a healthy run takes milliseconds.
	waitFor = 10 * time.Second
)

// node is what survives an LC restart: the host's files and the store file.
type node struct {
	rootfs    string
	storePath string
}

func newNode(t *testing.T) node {
	t.Helper()
	n := node{rootfs: t.TempDir(), storePath: filepath.Join(t.TempDir(), "lc.db")}
	require.NoError(t, os.MkdirAll(filepath.Join(n.rootfs, "data"), 0o755))
	return n
}

// lc is one run of the dataset manager on a node.
type lc struct {
	t        *testing.T
	node     node
	st       *store.Store
	reporter *managertest.Reporter
	m        *Manager

	passMu sync.Mutex
	passes map[string]int

	cancel  context.CancelFunc
	stopped chan struct{}
	version uint64
}

// startLC opens the store and creates the manager; tweak may change the options. Run starts with
// run(); tests that hand datasets over before Run call it later.
func startLC(t *testing.T, n node, tweak func(*Options)) *lc {
	t.Helper()
	st, err := store.Open(n.storePath, store.Options{})
	require.NoError(t, err)
	resolver, err := datasetindex.NewResolver(n.rootfs, []string{"/data"})
	require.NoError(t, err)
	opts := Options{Resolver: resolver, Rootfs: n.rootfs, Period: testPeriod, ScratchDir: t.TempDir()}
	if tweak != nil {
		tweak(&opts)
	}
	reporter := &managertest.Reporter{}
	m, err := New(st, reporter, opts)
	require.NoError(t, err)
	l := &lc{t: t, node: n, st: st, reporter: reporter, m: m, passes: map[string]int{}, version: 1}
	m.afterPass = func(key store.ResourceKey) {
		l.passMu.Lock()
		defer l.passMu.Unlock()
		l.passes[key.Name]++
	}
	t.Cleanup(l.stop)
	return l
}

func (l *lc) run() {
	ctx, cancel := context.WithCancel(l.t.Context())
	l.cancel = cancel
	l.stopped = make(chan struct{})
	go func() {
		defer close(l.stopped)
		l.m.Run(ctx)
	}()
}

// stop ends Run, waits for it and closes the store, as an LC shutting down. Idempotent.
func (l *lc) stop() {
	if l.cancel != nil {
		l.cancel()
		<-l.stopped
		l.cancel = nil
	}
	if l.st != nil {
		require.NoError(l.t, l.st.Close())
		l.st = nil
	}
}

func (l *lc) hostPath(hostPath string) string { return filepath.Join(l.node.rootfs, hostPath) }

// writeFile replaces the host file atomically, so a monitor never counts a half-written file.
func (l *lc) writeFile(hostPath, content string) {
	l.t.Helper()
	target := l.hostPath(hostPath)
	require.NoError(l.t, os.MkdirAll(filepath.Dir(target), 0o755))
	tmp := target + ".tmp"
	require.NoError(l.t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(l.t, os.Rename(tmp, target))
}

// appendFile appends with one write, as a data collector adding samples would.
func (l *lc) appendFile(hostPath, content string) {
	l.t.Helper()
	file, err := os.OpenFile(l.hostPath(hostPath), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(l.t, err)
	_, err = file.WriteString(content)
	require.NoError(l.t, err)
	require.NoError(l.t, file.Close())
}

// putDataset stores a Dataset as the GM client would and hands it to the manager.
func (l *lc) putDataset(name string, spec sednav1.DatasetSpec) store.ResourceKey {
	l.t.Helper()
	ds := sednav1.Dataset{Spec: spec}
	ds.Kind = "Dataset"
	ds.Name, ds.Namespace = name, testNamespace
	object, err := json.Marshal(ds)
	require.NoError(l.t, err)
	l.version++
	resource := store.Resource{Key: store.ResourceKey{Kind: Kind, Namespace: testNamespace, Name: name}, Version: l.version, Object: object}
	_, err = l.st.PutResource(resource)
	require.NoError(l.t, err)
	l.m.ResourceChanged(l.t.Context(), resource)
	return resource.Key
}

func (l *lc) passCount(name string) int {
	l.passMu.Lock()
	defer l.passMu.Unlock()
	return l.passes[name]
}

// waitPasses waits until the monitor of name has completed n more passes.
func (l *lc) waitPasses(name string, n int) {
	l.t.Helper()
	target := l.passCount(name) + n
	require.Eventually(l.t, func() bool { return l.passCount(name) >= target }, waitFor, time.Millisecond,
		"monitor of %s did not complete %d passes", name, n)
}

// waitReports waits for n reports in total and returns their decoded contents.
func (l *lc) waitReports(n int) []Report {
	l.t.Helper()
	require.Eventually(l.t, func() bool { return len(l.reporter.Reports()) >= n }, waitFor, time.Millisecond,
		"want %d reports, have %q", n, l.reporter.Contents())
	return l.reports()
}

func (l *lc) reports() []Report {
	l.t.Helper()
	var decoded []Report
	for _, r := range l.reporter.Reports() {
		var report Report
		require.NoError(l.t, json.Unmarshal(r.Content, &report), "report %s", r.Content)
		decoded = append(decoded, report)
	}
	return decoded
}

// savedState reads the record the manager keeps for name.
func (l *lc) savedState(name string) (record, bool) {
	l.t.Helper()
	raw, found, err := l.st.GetState(StateNamespace, testNamespace+"/"+name)
	require.NoError(l.t, err)
	if !found {
		return record{}, false
	}
	var rec record
	require.NoError(l.t, json.Unmarshal(raw, &rec))
	return rec, true
}

func count(n int) Report { return Report{NumberOfSamples: n} }

func txt(url string) sednav1.DatasetSpec {
	return sednav1.DatasetSpec{URL: url, Format: "txt", NodeName: "edge-1"}
}
