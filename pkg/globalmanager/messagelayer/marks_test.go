package messagelayer

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sedna-go/sedna/pkg/channel"
)

// memoryMarks is a MarkStore that outlives the hubs of a test, as the ConfigMap outlives GMs.
// While hold is set, Save blocks until it is closed.
type memoryMarks struct {
	mu    sync.Mutex
	marks map[string]Mark
	saves int
	hold  chan struct{}
	// refuse, when set, may refuse a write.
	refuse func(map[string]Mark) error
}

func (m *memoryMarks) Load(context.Context) (map[string]Mark, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Mark{}
	for k, v := range m.marks {
		out[k] = v
	}
	return out, nil
}

func (m *memoryMarks) Save(ctx context.Context, marks map[string]Mark) error {
	m.mu.Lock()
	hold := m.hold
	m.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refuse != nil {
		if err := m.refuse(marks); err != nil {
			return err
		}
	}
	if m.marks == nil {
		m.marks = map[string]Mark{}
	}
	for k, v := range marks {
		m.marks[k] = v
	}
	m.saves++
	return nil
}

func newMarkedServer(t *testing.T, marks MarkStore) *testServer {
	t.Helper()
	return newTestServerWith(t, Options{},
		&StaticTokenAuthenticator{Tokens: map[string]string{"token-a": "node-a", "token-b": "node-b"}},
		func(ctx context.Context, h *Hub) { require.NoError(t, h.UseMarks(ctx, marks, 5*time.Millisecond)) })
}

func dialStore(t *testing.T, ts *testServer, storeID string) *testLC {
	t.Helper()
	lc, _, err := ts.dial(t, "token-a", http.Header{channel.StoreIDHeader: {storeID}})
	require.NoError(t, err)
	lc.readSnapshot()
	return lc
}

// TestAReportHandledBeforeGMDiedIsNotHandledByTheNextGM kills GM between writing a report's
// mark and acknowledging it: the LC never gets the ack and replays the report to the next GM,
// which must acknowledge it without handling it again.
func TestAReportHandledBeforeGMDiedIsNotHandledByTheNextGM(t *testing.T) {
	marks := &memoryMarks{}
	first := newMarkedServer(t, marks)
	first.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := dialStore(t, first, "store-1")
	lc.report(1, "d", `{"numberOfSamples":1}`)
	require.Equal(t, uint64(1), lc.read().Ack)

	// GM dies right after its handler took report 2, before the ack is written.
	killed := make(chan struct{})
	first.hub.RegisterHandler("dataset", ReportHandlerFunc(func(_ context.Context, node string, key channel.Key, content []byte) error {
		first.mu.Lock()
		first.reports = append(first.reports, node+":"+key.String()+":"+string(content))
		first.mu.Unlock()
		ns := first.hub.node(node)
		ns.mu.Lock()
		conn := ns.conn
		ns.mu.Unlock()
		conn.close()
		close(killed)
		return nil
	}))
	lc.report(2, "d", `{"numberOfSamples":2}`)
	<-killed
	_, _, err := lc.ws.ReadMessage()
	require.Error(t, err, "the dead GM acknowledged the report")
	require.Equal(t, []string{
		`node-a:dataset/default/d:{"numberOfSamples":1}`,
		`node-a:dataset/default/d:{"numberOfSamples":2}`,
	}, first.acceptedReports())
	// Its mark is written after it was handled, before GM dies.
	require.Eventually(t, func() bool {
		got, _ := marks.Load(context.Background())
		return got["node-a"] == Mark{Store: "store-1", Seq: 2}
	}, 5*time.Second, 10*time.Millisecond)
	first.stop()

	// The next GM: the LC (same store) replays its unacknowledged report 2, then sends 3.
	second := newMarkedServer(t, marks)
	second.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc = dialStore(t, second, "store-1")
	lc.report(2, "d", `{"numberOfSamples":2}`)
	ack := lc.read()
	require.Equal(t, uint64(2), ack.Ack)
	require.Empty(t, ack.Error, "the replay is acknowledged so the LC forgets it")
	lc.report(3, "d", `{"numberOfSamples":3}`)
	require.Equal(t, uint64(3), lc.read().Ack)
	require.Equal(t, []string{`node-a:dataset/default/d:{"numberOfSamples":3}`}, second.acceptedReports(),
		"the next GM handled report 2 again")
	require.Equal(t, 1.0, testutil.ToFloat64(second.metrics.Reports.WithLabelValues("duplicate")))

	// A wiped LC store numbers from 1 again: its reports are new to the next GM too.
	third := newMarkedServer(t, marks)
	third.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc = dialStore(t, third, "store-1")
	lc.report(3, "d", `{"numberOfSamples":3}`)
	require.Equal(t, uint64(3), lc.read().Ack)
	require.NoError(t, lc.ws.Close())
	lc = dialStore(t, third, "store-2")
	lc.report(1, "d", `{"numberOfSamples":10}`)
	require.Empty(t, lc.read().Error)
	require.Equal(t, []string{`node-a:dataset/default/d:{"numberOfSamples":10}`}, third.acceptedReports())
	require.Eventually(t, func() bool {
		got, _ := marks.Load(context.Background())
		return got["node-a"] == Mark{Store: "store-2", Seq: 1}
	}, 5*time.Second, 10*time.Millisecond)
}

// TestReportsWaitForTheirMarkAndShareWrites: reports are handled as they come, no report is
// acknowledged before its mark is written, and reports arriving together share a write.
func TestReportsWaitForTheirMarkAndShareWrites(t *testing.T) {
	marks := &memoryMarks{hold: make(chan struct{})}
	ts := newMarkedServer(t, marks)
	ts.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := dialStore(t, ts, "store-1")
	for seq := uint64(1); seq <= 20; seq++ {
		lc.report(seq, "d", `{"numberOfSamples":1}`)
	}
	require.Eventually(t, func() bool { return len(ts.acceptedReports()) == 20 }, 5*time.Second, 10*time.Millisecond,
		"the reports are handled while their mark waits")
	require.NoError(t, lc.ws.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, _, err := lc.ws.ReadMessage()
	require.Error(t, err, "a report was acknowledged before its mark was written")

	close(marks.hold)
	require.Eventually(t, func() bool {
		got, _ := marks.Load(context.Background())
		return got["node-a"] == Mark{Store: "store-1", Seq: 20}
	}, 5*time.Second, 10*time.Millisecond)
	marks.mu.Lock()
	saves := marks.saves
	marks.mu.Unlock()
	// The first write was gathered while the reports were handled; a second one carries
	// what it missed.
	require.LessOrEqual(t, saves, 2, "the 20 reports did not share their writes")

	// The read deadline broke the first connection. The LC replays 1-20, unacknowledged, and
	// goes on.
	lc = dialStore(t, ts, "store-1")
	for seq := uint64(1); seq <= 40; seq++ {
		lc.report(seq, "d", `{"numberOfSamples":1}`)
	}
	for seq := uint64(1); seq <= 40; seq++ {
		require.Equal(t, seq, lc.read().Ack)
	}
	require.Len(t, ts.acceptedReports(), 40)
	marks.mu.Lock()
	saves = marks.saves - saves
	marks.mu.Unlock()
	t.Logf("20 new pipelined reports, %d mark writes", saves)
	require.Less(t, saves, 20, "every report cost a write")
}

// TestAReportHandledWhenGMDiedBeforeItsMarkIsHandledAgain: a GM that handled a report and died
// before writing its mark never acknowledged it; the next GM handles it again. Nothing is lost
// (at least once).
func TestAReportHandledWhenGMDiedBeforeItsMarkIsHandledAgain(t *testing.T) {
	marks := &memoryMarks{hold: make(chan struct{})}
	first := newMarkedServer(t, marks)
	first.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := dialStore(t, first, "store-1")
	lc.report(1, "d", `{"numberOfSamples":1}`)
	require.Eventually(t, func() bool { return len(first.acceptedReports()) == 1 }, 5*time.Second, 10*time.Millisecond)
	first.stop() // its mark write was still waiting
	_, _, err := lc.ws.ReadMessage()
	require.Error(t, err, "the dead GM acknowledged a report whose mark it never wrote")
	got, _ := marks.Load(context.Background())
	require.Empty(t, got)

	marks.mu.Lock()
	marks.hold = nil
	marks.mu.Unlock()
	second := replayToTheNextGM(t, marks)
	require.Equal(t, []string{`node-a:dataset/default/d:{"numberOfSamples":1}`}, second.acceptedReports(),
		"the next GM did not handle the report the dead GM never marked")
}

// replayToTheNextGM starts the next GM on marks, and the LC (store-1) sends it report 1 again,
// which it must acknowledge without an error.
func replayToTheNextGM(t *testing.T, marks *memoryMarks) *testServer {
	t.Helper()
	next := newMarkedServer(t, marks)
	next.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := dialStore(t, next, "store-1")
	lc.report(1, "d", `{"numberOfSamples":1}`)
	ack := lc.read()
	require.Equal(t, uint64(1), ack.Ack)
	require.Empty(t, ack.Error)
	return next
}

// TestAMarkTheStoreWroteThoughItAnsweredAnErrorLosesNoReport: the store wrote the mark and
// answered an error (an API server that died after etcd took the write), and GM died while
// retrying. The next GM takes the LC's replay as a duplicate, so the report must have been
// handled by the first GM: a mark never covers a report no GM handled.
func TestAMarkTheStoreWroteThoughItAnsweredAnErrorLosesNoReport(t *testing.T) {
	marks := &memoryMarks{marks: map[string]Mark{}}
	var wrote sync.Once
	written := make(chan struct{})
	marks.refuse = func(m map[string]Mark) error {
		maps.Copy(marks.marks, m) // Save holds marks.mu
		wrote.Do(func() { close(written) })
		return apierrors.NewServiceUnavailable("the API server went away after the write")
	}
	first := newMarkedServer(t, marks)
	first.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := dialStore(t, first, "store-1")
	lc.report(1, "d", `{"numberOfSamples":1}`)
	<-written
	first.stop()
	_, _, err := lc.ws.ReadMessage()
	require.Error(t, err, "GM acknowledged a report whose mark write failed")

	marks.mu.Lock()
	marks.refuse = nil
	marks.mu.Unlock()
	second := replayToTheNextGM(t, marks)
	require.Empty(t, second.acceptedReports(), "the next GM handled a report its mark covers")
	require.Equal(t, []string{`node-a:dataset/default/d:{"numberOfSamples":1}`}, first.acceptedReports(),
		"the report its mark covers was handled by no GM: lost")
}

// TestAReplacedConnectionsReportsAreHandledFirst: an LC that reconnects while GM still handles
// what its previous connection took gets its new reports handled after those, so the mark
// never passes a report not yet handled.
func TestAReplacedConnectionsReportsAreHandledFirst(t *testing.T) {
	marks := &memoryMarks{}
	ts := newMarkedServer(t, marks)
	release := make(chan struct{})
	blocked := make(chan struct{})
	ts.hub.RegisterHandler("dataset", ReportHandlerFunc(func(_ context.Context, node string, key channel.Key, content []byte) error {
		if strings.Contains(string(content), "slow") {
			close(blocked)
			<-release
		}
		ts.mu.Lock()
		ts.reports = append(ts.reports, string(content))
		ts.mu.Unlock()
		return nil
	}))
	ts.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	first := dialStore(t, ts, "store-1")
	first.report(1, "d", `{"slow":1}`)
	<-blocked

	second := dialStore(t, ts, "store-1") // replaces the first connection
	second.report(1, "d", `{"slow":1}`)   // the replay: a duplicate
	second.report(2, "d", `{"numberOfSamples":2}`)
	require.Never(t, func() bool { return len(ts.acceptedReports()) > 0 }, 300*time.Millisecond, 10*time.Millisecond,
		"report 2 was handled before report 1, which the previous connection took")
	got, _ := marks.Load(context.Background())
	require.Empty(t, got, "a mark was written past a report not handled")

	close(release)
	require.Equal(t, uint64(1), second.read().Ack)
	require.Equal(t, uint64(2), second.read().Ack)
	require.Equal(t, []string{`{"slow":1}`, `{"numberOfSamples":2}`}, ts.acceptedReports())
}

func TestConfigMapMarks(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	store := &ConfigMapMarks{Client: kube.CoreV1().ConfigMaps("sedna"), Name: "sedna-gm-report-marks"}

	marks, err := store.Load(ctx)
	require.NoError(t, err)
	require.Empty(t, marks, "no ConfigMap yet: no marks")

	require.NoError(t, store.Save(ctx, map[string]Mark{"edge-1": {Store: "s1", Seq: 4}, "edge-2": {Store: "s9", Seq: 1}}))
	require.NoError(t, store.Save(ctx, map[string]Mark{"edge-1": {Store: "s1", Seq: 7}}))
	marks, err = store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]Mark{"edge-1": {Store: "s1", Seq: 7}, "edge-2": {Store: "s9", Seq: 1}}, marks)

	// A damaged entry costs only its node.
	cm, err := kube.CoreV1().ConfigMaps("sedna").Get(ctx, "sedna-gm-report-marks", metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data["edge-2"] = "{"
	_, err = kube.CoreV1().ConfigMaps("sedna").Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	marks, err = store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]Mark{"edge-1": {Store: "s1", Seq: 7}}, marks)
}

// TestAClosedConnectionsReaderDoesNotWaitForAStuckMarkWrite: with the mark store stuck, an LC
// that sends more reports than the queue holds leaves the reader waiting; when the connection
// is replaced, that reader must end rather than wait for the write.
func TestAClosedConnectionsReaderDoesNotWaitForAStuckMarkWrite(t *testing.T) {
	marks := &memoryMarks{hold: make(chan struct{})}
	ts := newMarkedServer(t, marks)
	ts.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := dialStore(t, ts, "store-1")
	// While the mark write is stuck, the ack goroutine holds one report and its queue is full,
	// the report goroutine holds one more and the reader's queue is full: the reader waits.
	const stuck = 2*reportQueue + 2
	for seq := uint64(1); seq <= stuck+10; seq++ {
		lc.report(seq, "d", `{"numberOfSamples":1}`)
	}
	ns := ts.hub.node("node-a")
	var first *connection
	require.Eventually(t, func() bool {
		ns.mu.Lock()
		defer ns.mu.Unlock()
		first = ns.conn
		return first != nil && ns.lastReportSeq == stuck
	}, 5*time.Second, 10*time.Millisecond)

	second := dialStore(t, ts, "store-1") // replaces, and closes, the first connection
	select {
	case <-first.readerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader of the closed connection still waits for the stuck report goroutine")
	}
	ns.mu.Lock()
	last := ns.lastReportSeq
	ns.mu.Unlock()
	require.Equal(t, uint64(stuck), last, "the reader took a report it could not hand over")

	// Once the store works again, the taken reports are handled and the rest, replayed on the
	// new connection, too.
	close(marks.hold)
	require.Eventually(t, func() bool { return len(ts.acceptedReports()) == stuck }, 5*time.Second, 10*time.Millisecond)
	for seq := uint64(1); seq <= stuck+10; seq++ {
		second.report(seq, "d", `{"numberOfSamples":1}`)
	}
	for seq := uint64(1); seq <= stuck+10; seq++ {
		require.Equal(t, seq, second.read().Ack)
	}
	require.Len(t, ts.acceptedReports(), stuck+10, "a replayed report was lost or handled twice")
}

// TestAMarkTheStoreRefusesBlocksOnlyItsNode: when the ConfigMap cannot take one node's mark
// (past its size limit), the other nodes' reports are still acknowledged; the refused node's wait.
func TestAMarkTheStoreRefusesBlocksOnlyItsNode(t *testing.T) {
	tooLarge := apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "sedna-gm-report-marks",
		field.ErrorList{field.TooLong(field.NewPath(""), "", 1<<20)})
	var refused sync.WaitGroup
	refused.Add(1)
	var once sync.Once
	marks := &memoryMarks{refuse: func(m map[string]Mark) error {
		if _, ok := m["node-b"]; ok {
			once.Do(refused.Done)
			return tooLarge
		}
		return nil
	}}
	ts := newMarkedServer(t, marks)
	ts.hub.Publish(datasetKey("a"), 1, object("a", 1), "node-a")
	ts.hub.Publish(datasetKey("b"), 1, object("b", 1), "node-b")
	a := dialStore(t, ts, "store-a")
	b, _, err := ts.dial(t, "token-b", http.Header{channel.StoreIDHeader: {"store-b"}})
	require.NoError(t, err)
	b.readSnapshot()
	b.report(1, "b", `{"numberOfSamples":1}`)
	refused.Wait()
	// node-b's mark stays unwritten: every later write carries it along with node-a's.
	a.report(1, "a", `{"numberOfSamples":1}`)

	ack := a.read()
	require.Equal(t, uint64(1), ack.Ack, "node-a waits for node-b's refused mark")
	require.Empty(t, ack.Error)
	require.NoError(t, b.ws.SetReadDeadline(time.Now().Add(1500*time.Millisecond)))
	_, _, err = b.ws.ReadMessage()
	require.Error(t, err, "node-b's report was acknowledged though its mark was never written")
	// Both were handled; node-b's stays unacknowledged, so a next GM would handle it again.
	require.ElementsMatch(t, []string{`node-a:dataset/default/a:{"numberOfSamples":1}`, `node-b:dataset/default/b:{"numberOfSamples":1}`},
		ts.acceptedReports())
	got, _ := marks.Load(context.Background())
	require.Equal(t, map[string]Mark{"node-a": {Store: "store-a", Seq: 1}}, got)
}

// TestConfigMapMarksPrunesDeletedNodes: Load drops, from the ConfigMap, the marks of nodes the
// cluster no longer has, after it returned (the take-over does not wait for the Node list).
func TestConfigMapMarksPrunesDeletedNodes(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}})
	store := &ConfigMapMarks{Client: kube.CoreV1().ConfigMaps("sedna"), Name: "sedna-gm-report-marks", Nodes: kube.CoreV1().Nodes()}
	require.NoError(t, store.Save(ctx, map[string]Mark{"edge-1": {Store: "s1", Seq: 4}, "edge-gone": {Store: "s9", Seq: 1}}))

	marks, err := store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, Mark{Store: "s1", Seq: 4}, marks["edge-1"])
	store.WaitPruned()
	cm, err := kube.CoreV1().ConfigMaps("sedna").Get(ctx, "sedna-gm-report-marks", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"edge-1"}, slices.Sorted(maps.Keys(cm.Data)), "the deleted node's mark stays in the ConfigMap")
}

// TestConfigMapMarksLoadDoesNotWaitForTheNodeList: a leader taking over serves LCs with the
// marks it read; listing thousands of Nodes to prune deleted ones happens meanwhile.
func TestConfigMapMarksLoadDoesNotWaitForTheNodeList(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}})
	release := make(chan struct{})
	kube.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-release
		return false, nil, nil
	})
	store := &ConfigMapMarks{Client: kube.CoreV1().ConfigMaps("sedna"), Name: "sedna-gm-report-marks", Nodes: kube.CoreV1().Nodes()}
	require.NoError(t, store.Save(ctx, map[string]Mark{"edge-1": {Store: "s1", Seq: 4}, "edge-gone": {Store: "s9", Seq: 1}}))

	loaded := make(chan map[string]Mark, 1)
	go func() {
		marks, err := store.Load(ctx)
		require.NoError(t, err)
		loaded <- marks
	}()
	select {
	case marks := <-loaded:
		require.Equal(t, Mark{Store: "s1", Seq: 4}, marks["edge-1"])
	case <-time.After(time.Minute):
		t.Fatal("Load waited for the Node list")
	}
	close(release)
	store.WaitPruned()
	cm, err := kube.CoreV1().ConfigMaps("sedna").Get(ctx, "sedna-gm-report-marks", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"edge-1"}, slices.Sorted(maps.Keys(cm.Data)))
}

// TestAReplacedConnectionTakesNoReport: once an LC reconnected (here with a new store), a report
// its old connection's reader still had in hand is not taken, so it can neither advance the new
// store's numbering (a seq of the old store counted against the new one would make the new
// store's first reports duplicates, acknowledged and never handled) nor be handled twice.
func TestAReplacedConnectionTakesNoReport(t *testing.T) {
	h := NewHub(Options{}, nil)
	ns := h.node("node-a")
	old := &connection{hub: h, ns: ns, store: "store-1"}
	current := &connection{hub: h, ns: ns, store: "store-2"}
	ns.mu.Lock()
	ns.conn, ns.storeID, ns.lastReportSeq = current, "store-2", 0
	ns.mu.Unlock()

	_, taken := h.takeReport(ns, old, &channel.Frame{Seq: 500})
	require.False(t, taken, "the replaced connection took a report")
	duplicate, taken := h.takeReport(ns, current, &channel.Frame{Seq: 1})
	require.True(t, taken)
	require.False(t, duplicate, "the new store's first report counted as a duplicate")

	// The same store, reconnected: the old connection takes nothing either; the LC sends the
	// report again on its new connection.
	again := &connection{hub: h, ns: ns, store: "store-2"}
	ns.mu.Lock()
	ns.conn = again
	ns.mu.Unlock()
	_, taken = h.takeReport(ns, current, &channel.Frame{Seq: 2})
	require.False(t, taken)
	duplicate, taken = h.takeReport(ns, again, &channel.Frame{Seq: 2})
	require.True(t, taken)
	require.False(t, duplicate)
}

// TestAnUnavailableStoreIsNotHammered: while the mark store is down, reports keep coming (each
// wakes the persister), and GM tries the write again once a second, not at every batch delay.
func TestAnUnavailableStoreIsNotHammered(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	marks := &memoryMarks{refuse: func(map[string]Mark) error {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		return apierrors.NewServiceUnavailable("the API server is down")
	}}
	ts := newMarkedServer(t, marks) // batch delay 5 ms
	ts.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := dialStore(t, ts, "store-1")
	start := time.Now()
	for seq := uint64(1); seq <= 40; seq++ {
		lc.report(seq, "d", `{"numberOfSamples":1}`)
		time.Sleep(25 * time.Millisecond)
	}
	elapsed := time.Since(start)
	mu.Lock()
	got := attempts
	mu.Unlock()
	// One attempt at the start and one a second after each failure, at most; a write per batch
	// delay would be 40 or more.
	require.LessOrEqual(t, got, int(elapsed/time.Second)+2, "writes tried while the store was down, over %s", elapsed)
	require.Len(t, ts.acceptedReports(), 40, "the reports are handled while their marks wait")
}
