package messagelayer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
)

// testServer is a GM channel on a loopback TLS listener with static tokens "token-<node>".
type testServer struct {
	hub     *Hub
	metrics *Metrics
	srv     *httptest.Server
	// stop ends the server as a GM process ending would: its hub's context ends and its
	// listener closes.
	stop func()

	mu      sync.Mutex
	reports []string // node:key:content of accepted reports
}

func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	return newTestServerWith(t, opts, &StaticTokenAuthenticator{Tokens: map[string]string{"token-a": "node-a", "token-b": "node-b"}}, nil)
}

// newTestServerWith serves with auth; setup, when set, runs on the hub before it serves.
func newTestServerWith(t *testing.T, opts Options, auth Authenticator, setup func(context.Context, *Hub)) *testServer {
	t.Helper()
	return newTestServerIn(t, context.Background(), opts, auth, setup)
}

// newTestServerIn serves with the values of base (a logger, say) in the hub's context.
func newTestServerIn(t *testing.T, base context.Context, opts Options, auth Authenticator, setup func(context.Context, *Hub)) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(base)
	ts := &testServer{metrics: NewMetrics(nil)}
	ts.hub = NewHub(opts, ts.metrics)
	ts.hub.RegisterHandler("dataset", ReportHandlerFunc(func(_ context.Context, node string, key channel.Key, content []byte) error {
		if strings.Contains(string(content), "invalid") {
			return fmt.Errorf("numberOfSamples is not a number")
		}
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.reports = append(ts.reports, node+":"+key.String()+":"+string(content))
		return nil
	}))
	if setup != nil {
		setup(ctx, ts.hub)
	}
	ts.srv = httptest.NewTLSServer(NewServer(ctx, ts.hub, auth))
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			ts.srv.CloseClientConnections()
			ts.srv.Close()
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) acceptedReports() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.reports...)
}

// testLC is a raw client speaking the protocol frame by frame.
type testLC struct {
	t  *testing.T
	ws *websocket.Conn
}

func (ts *testServer) dial(t *testing.T, token string, header http.Header) (*testLC, *http.Response, error) {
	t.Helper()
	if header == nil {
		header = http.Header{}
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	dialer := websocket.Dialer{TLSClientConfig: ts.srv.Client().Transport.(*http.Transport).TLSClientConfig}
	ws, resp, err := dialer.Dial("wss"+strings.TrimPrefix(ts.srv.URL, "https")+"/", header)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &testLC{t: t, ws: ws}, resp, nil
}

func (ts *testServer) connect(t *testing.T, node string) *testLC {
	t.Helper()
	lc, _, err := ts.dial(t, "token-"+strings.TrimPrefix(node, "node-"), nil)
	require.NoError(t, err)
	return lc
}

func (lc *testLC) read() *channel.Frame {
	lc.t.Helper()
	require.NoError(lc.t, lc.ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, data, err := lc.ws.ReadMessage()
	require.NoError(lc.t, err)
	f, err := channel.Decode(data, 0)
	require.NoError(lc.t, err)
	return f
}

func (lc *testLC) send(f channel.Frame) {
	lc.t.Helper()
	data, err := channel.Encode(&f)
	require.NoError(lc.t, err)
	require.NoError(lc.t, lc.ws.WriteMessage(websocket.TextMessage, data))
}

func (lc *testLC) ack(f *channel.Frame) {
	lc.send(channel.Frame{Header: channel.Header{Operation: channel.OpAck}, Ack: f.Seq})
}

// readSnapshot reads and acks frames up to and including the sync frame.
func (lc *testLC) readSnapshot() (inserts []*channel.Frame, sync []channel.SyncEntry) {
	lc.t.Helper()
	for {
		f := lc.read()
		lc.ack(f)
		if f.Header.Operation == channel.OpSync {
			require.NoError(lc.t, json.Unmarshal(f.Content, &sync))
			return inserts, sync
		}
		inserts = append(inserts, f)
	}
}

func (lc *testLC) report(seq uint64, name, content string) {
	lc.send(channel.Frame{
		Header:  channel.Header{Namespace: "default", ResourceKind: "dataset", ResourceName: name, Operation: channel.OpStatus},
		Content: []byte(content), Seq: seq,
	})
}

func datasetKey(name string) channel.Key {
	return channel.Key{Kind: "dataset", Namespace: "default", Name: name}
}

func object(name string, version uint64) []byte {
	return []byte(fmt.Sprintf(`{"metadata":{"name":%q},"v":%d}`, name, version))
}

func TestSnapshotOnConnectHoldsOnlyTheNodesResources(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.hub.Publish(datasetKey("b"), 2, object("b", 2), "node-a")
	ts.hub.Publish(datasetKey("a"), 1, object("a", 1), "node-a")
	ts.hub.Publish(datasetKey("other"), 3, object("other", 3), "node-b")

	inserts, sync := ts.connect(t, "node-a").readSnapshot()
	require.Len(t, inserts, 2)
	require.Equal(t, "a", inserts[0].Header.ResourceName, "snapshot in key order")
	require.Equal(t, channel.OpInsert, inserts[0].Header.Operation)
	require.Equal(t, uint64(1), inserts[0].Version)
	require.JSONEq(t, string(object("a", 1)), string(inserts[0].Content))
	require.Equal(t, []channel.SyncEntry{{Key: datasetKey("a"), Version: 1}, {Key: datasetKey("b"), Version: 2}}, sync)
	require.Equal(t, []string{"node-a"}, ts.hub.ConnectedNodes())
}

func TestDeltasAfterTheSnapshot(t *testing.T) {
	ts := newTestServer(t, Options{})
	lc := ts.connect(t, "node-a")
	_, sync := lc.readSnapshot()
	require.Empty(t, sync)

	ts.hub.Publish(datasetKey("d"), 5, object("d", 5), "node-a")
	f := lc.read()
	require.Equal(t, channel.OpInsert, f.Header.Operation)
	require.Equal(t, uint64(5), f.Version)
	lc.ack(f)

	// Moving the dataset to another node deletes it here.
	ts.hub.Publish(datasetKey("d"), 6, object("d", 6), "node-b")
	f = lc.read()
	require.Equal(t, channel.OpDelete, f.Header.Operation)
	require.Equal(t, uint64(6), f.Version)
	require.Empty(t, f.Content)
	lc.ack(f)
	require.False(t, ts.hub.IsBound("node-a", datasetKey("d")))
	require.True(t, ts.hub.IsBound("node-b", datasetKey("d")))
}

func TestStaleVersionsAreNotSent(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.hub.Publish(datasetKey("d"), 9, object("d", 9), "node-a")
	ts.hub.Publish(datasetKey("d"), 4, object("d", 4), "node-a") // a late event
	inserts, _ := ts.connect(t, "node-a").readSnapshot()
	require.Len(t, inserts, 1)
	require.Equal(t, uint64(9), inserts[0].Version)
}

func TestOfflineNodeGetsCurrentStateNotABacklog(t *testing.T) {
	ts := newTestServer(t, Options{})
	for v := uint64(1); v <= 50; v++ {
		ts.hub.Publish(datasetKey("d"), v, object("d", v), "node-a")
	}
	ts.hub.Publish(datasetKey("gone"), 1, object("gone", 1), "node-a")
	ts.hub.Unpublish(datasetKey("gone"))

	inserts, sync := ts.connect(t, "node-a").readSnapshot()
	require.Len(t, inserts, 1)
	require.Equal(t, uint64(50), inserts[0].Version)
	require.Equal(t, []channel.SyncEntry{{Key: datasetKey("d"), Version: 50}}, sync)
}

func TestUnacknowledgedFramesAreResent(t *testing.T) {
	ts := newTestServer(t, Options{ResendAfter: 100 * time.Millisecond})
	ts.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := ts.connect(t, "node-a")
	first := lc.read() // not acknowledged
	require.Equal(t, channel.OpInsert, first.Header.Operation)
	sync := lc.read()
	require.Equal(t, channel.OpSync, sync.Header.Operation)
	lc.ack(sync)

	again := lc.read()
	require.Equal(t, first.Header, again.Header)
	require.Equal(t, first.Version, again.Version)
	require.Greater(t, again.Seq, first.Seq, "a resend carries a new sequence number")
	require.GreaterOrEqual(t, testutil.ToFloat64(ts.metrics.FramesResent), 1.0)
	lc.ack(again)

	// Acknowledged: nothing more comes until something changes.
	require.NoError(t, lc.ws.SetReadDeadline(time.Now().Add(400*time.Millisecond)))
	_, _, err := lc.ws.ReadMessage()
	require.Error(t, err, "a frame was resent after its acknowledgement")
}

func TestReconnectResendsTheSnapshot(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := ts.connect(t, "node-a")
	lc.readSnapshot()
	require.NoError(t, lc.ws.Close())

	ts.hub.Publish(datasetKey("d"), 2, object("d", 2), "node-a")
	ts.hub.Publish(datasetKey("e"), 1, object("e", 1), "node-a")
	inserts, sync := ts.connect(t, "node-a").readSnapshot()
	require.Len(t, inserts, 2)
	require.Equal(t, []channel.SyncEntry{{Key: datasetKey("d"), Version: 2}, {Key: datasetKey("e"), Version: 1}}, sync)
}

func TestReportsAreAcknowledgedDeduplicatedAndAuthorized(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.hub.Publish(datasetKey("mine"), 1, object("mine", 1), "node-a")
	ts.hub.Publish(datasetKey("theirs"), 1, object("theirs", 1), "node-b")
	lc := ts.connect(t, "node-a")
	lc.readSnapshot()

	cases := []struct {
		seq       uint64
		name      string
		content   string
		wantError string
	}{
		{seq: 1, name: "mine", content: `{"numberOfSamples":3}`},
		{seq: 1, name: "mine", content: `{"numberOfSamples":3}`}, // replayed after a reconnect
		{seq: 2, name: "theirs", content: `{"numberOfSamples":99}`, wantError: "is not bound to node node-a"},
		{seq: 3, name: "unknown", content: `{"numberOfSamples":1}`, wantError: "is not bound to node node-a"},
		{seq: 4, name: "mine", content: `{"invalid":true}`, wantError: "numberOfSamples is not a number"},
		{seq: 5, name: "mine", content: `{"numberOfSamples":4}`},
	}
	for _, c := range cases {
		lc.report(c.seq, c.name, c.content)
		ack := lc.read()
		require.Equal(t, channel.OpAck, ack.Header.Operation)
		require.Equal(t, c.seq, ack.Ack)
		if c.wantError == "" {
			require.Empty(t, ack.Error)
		} else {
			require.Contains(t, ack.Error, c.wantError)
		}
	}
	require.Equal(t, []string{
		`node-a:dataset/default/mine:{"numberOfSamples":3}`,
		`node-a:dataset/default/mine:{"numberOfSamples":4}`,
	}, ts.acceptedReports())
	require.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.Reports.WithLabelValues("duplicate")))
	require.Equal(t, 2.0, testutil.ToFloat64(ts.metrics.ReportsRejected.WithLabelValues(reasonNotBound)))
	require.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.ReportsRejected.WithLabelValues(reasonInvalid)))
}

func TestAuthentication(t *testing.T) {
	ts := newTestServer(t, Options{})
	cases := map[string]struct {
		token      string
		header     http.Header
		wantStatus int
	}{
		"no token":               {wantStatus: http.StatusUnauthorized},
		"unknown token":          {token: "forged", wantStatus: http.StatusUnauthorized},
		"basic auth":             {header: http.Header{"Authorization": {"Basic dXNlcjpwdw=="}}, wantStatus: http.StatusUnauthorized},
		"claims another node":    {token: "token-a", header: http.Header{NodeNameHeader: {"node-b"}}, wantStatus: http.StatusForbidden},
		"browser origin refused": {token: "token-a", header: http.Header{"Origin": {"https://evil.example"}}, wantStatus: http.StatusForbidden},
		"store id too long":      {token: "token-a", header: http.Header{channel.StoreIDHeader: {strings.Repeat("a", 65)}}, wantStatus: http.StatusBadRequest},
		"store id huge":          {token: "token-a", header: http.Header{channel.StoreIDHeader: {strings.Repeat("0", 512<<10)}}, wantStatus: http.StatusBadRequest},
		"store id characters":    {token: "token-a", header: http.Header{channel.StoreIDHeader: {`a"b/c`}}, wantStatus: http.StatusBadRequest},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, resp, err := ts.dial(t, tc.token, tc.header)
			require.Error(t, err)
			require.NotNil(t, resp)
			require.Equal(t, tc.wantStatus, resp.StatusCode)
		})
	}
	_, resp, err := ts.dial(t, "token-a", http.Header{NodeNameHeader: {"node-a"}})
	require.NoError(t, err, "the right node name is accepted")
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.AuthFailures.WithLabelValues("wrong_node")))
	require.Equal(t, 3.0, testutil.ToFloat64(ts.metrics.AuthFailures.WithLabelValues("bad_store_id")))
	// What the LC sends: 32 hex digits.
	_, resp, err = ts.dial(t, "token-a", http.Header{channel.StoreIDHeader: {"0123456789abcdef0123456789abcdef"}})
	require.NoError(t, err, "the LC's store identity is accepted")
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
}

func TestMalformedFramesAreIgnoredAndOversizedCloseTheConnection(t *testing.T) {
	ts := newTestServer(t, Options{MaxFrameBytes: 4096})
	ts.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := ts.connect(t, "node-a")
	lc.readSnapshot()

	for _, garbage := range []string{"not json", `{"header":{"operation":"explode"},"seq":1}`, `{"header":{"operation":"insert","namespace":"default","resourceKind":"dataset","resourceName":"d"},"seq":1,"content":"e30="}`} {
		require.NoError(t, lc.ws.WriteMessage(websocket.TextMessage, []byte(garbage)))
	}
	require.NoError(t, lc.ws.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2}))
	lc.report(1, "d", `{"numberOfSamples":1}`)
	ack := lc.read()
	require.Equal(t, uint64(1), ack.Ack, "the connection survives malformed frames")
	require.Equal(t, 4.0, testutil.ToFloat64(ts.metrics.MalformedFrames))

	require.NoError(t, lc.ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 8192))))
	require.NoError(t, lc.ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _, err := lc.ws.ReadMessage()
	require.Error(t, err, "an oversized frame closes the connection")
	require.Eventually(t, func() bool { return len(ts.hub.ConnectedNodes()) == 0 }, 5*time.Second, 10*time.Millisecond)

	// And the server still serves.
	inserts, _ := ts.connect(t, "node-a").readSnapshot()
	require.Len(t, inserts, 1)
}

func TestAStuckNodeDoesNotBlockOthers(t *testing.T) {
	ts := newTestServer(t, Options{WriteTimeout: 300 * time.Millisecond})
	stuck := ts.connect(t, "node-a") // never reads
	_ = stuck
	healthy := ts.connect(t, "node-b")
	healthy.readSnapshot()

	big := []byte(`{"blob":"` + strings.Repeat("x", 256<<10) + `"}`)
	for i := range 64 { // 16 MiB: more than the socket buffers hold
		ts.hub.Publish(datasetKey(fmt.Sprintf("big-%d", i)), 1, big, "node-a")
	}
	for i := range 20 {
		ts.hub.Publish(datasetKey(fmt.Sprintf("small-%d", i)), 1, object("s", 1), "node-b")
	}
	for range 20 {
		f := healthy.read()
		require.Equal(t, channel.OpInsert, f.Header.Operation)
		healthy.ack(f)
	}
	// The stuck node's pending state stays bounded by its resources, and it is disconnected.
	require.Eventually(t, func() bool { return !contains(ts.hub.ConnectedNodes(), "node-a") }, 10*time.Second, 20*time.Millisecond)
	ns := ts.hub.node("node-a")
	ns.mu.Lock()
	require.LessOrEqual(t, len(ns.resources), 64)
	ns.mu.Unlock()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestANewLCStoreRestartsReportNumbering(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	connectWithStore := func(storeID string) *testLC {
		lc, _, err := ts.dial(t, "token-a", http.Header{channel.StoreIDHeader: {storeID}})
		require.NoError(t, err)
		lc.readSnapshot()
		return lc
	}
	lc := connectWithStore("store-1")
	lc.report(7, "d", `{"numberOfSamples":7}`)
	require.Empty(t, lc.read().Error)
	require.NoError(t, lc.ws.Close())

	// The same store replays seq 7: a duplicate.
	lc = connectWithStore("store-1")
	lc.report(7, "d", `{"numberOfSamples":7}`)
	lc.read()
	require.NoError(t, lc.ws.Close())
	require.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.Reports.WithLabelValues("duplicate")))

	// The node's store was wiped: its numbering starts again and seq 1 is new.
	lc = connectWithStore("store-2")
	lc.report(1, "d", `{"numberOfSamples":1}`)
	lc.read()
	require.Equal(t, []string{
		`node-a:dataset/default/d:{"numberOfSamples":7}`,
		`node-a:dataset/default/d:{"numberOfSamples":1}`,
	}, ts.acceptedReports())
}

func TestNodeStatesFollowTheHubsConnections(t *testing.T) {
	ts := newTestServer(t, Options{})
	changes := make(chan string, 8)
	ts.hub.NodeStates().OnChange(func(node string) { changes <- node })
	_, ok := ts.hub.NodeStates().ConnectedSince("node-a")
	require.False(t, ok)

	lc := ts.connect(t, "node-a")
	lc.readSnapshot()
	require.Equal(t, "node-a", <-changes)
	first, ok := ts.hub.NodeStates().ConnectedSince("node-a")
	require.True(t, ok)

	require.NoError(t, lc.ws.Close())
	require.Equal(t, "node-a", <-changes)
	require.Eventually(t, func() bool {
		_, connected := ts.hub.NodeStates().ConnectedSince("node-a")
		return !connected
	}, 5*time.Second, 10*time.Millisecond)

	ts.connect(t, "node-a").readSnapshot()
	require.Equal(t, "node-a", <-changes)
	again, ok := ts.hub.NodeStates().ConnectedSince("node-a")
	require.True(t, ok)
	require.False(t, again.Before(first), "a reconnect starts a new period")
	require.Equal(t, []string{"node-a"}, ts.hub.NodeStates().ConnectedNodes())
}

func TestPublishEachSendsEachNodeItsOwnCopy(t *testing.T) {
	ts := newTestServer(t, Options{})
	key := channel.Key{Kind: "federatedlearningjob", Namespace: "default", Name: "fl"}
	ts.hub.PublishEach(key, 3, map[string][]byte{"node-a": object("fl-a", 3), "node-b": object("fl-b", 3)})
	for node, want := range map[string][]byte{"node-a": object("fl-a", 3), "node-b": object("fl-b", 3)} {
		inserts, _ := ts.connect(t, node).readSnapshot()
		require.Len(t, inserts, 1, node)
		require.JSONEq(t, string(want), string(inserts[0].Content), node)
	}
	// A node left out of the next copies gets a delete.
	ts.hub.PublishEach(key, 4, map[string][]byte{"node-a": object("fl-a", 4)})
	require.True(t, ts.hub.IsBound("node-a", key))
	require.False(t, ts.hub.IsBound("node-b", key))
}
