package gmclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

func TestSnapshotIsAppliedAndSyncPrunesWhatGMNoLongerPublishes(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.publish("kept", 2, testNode)
	gm.publish("same", 3, testNode)
	gm.publish("fresh", 1, testNode)
	gm.publish("elsewhere", 1, "node-b")
	gm.start("")

	lc := newLC(t, gm)
	// What the LC had from an earlier connection.
	for _, r := range []store.Resource{
		{Key: storeKey("stale"), Version: 1, Object: []byte(`{"old":true}`)},
		{Key: storeKey("kept"), Version: 1, Object: []byte(`{"old":true}`)},
		{Key: storeKey("same"), Version: 3, Object: gmObject("same", 3)},
	} {
		_, err := lc.store.PutResource(r)
		require.NoError(t, err)
	}
	c := lc.newClient(t, lc.options(gm.url()))
	run(t, ctx, c)

	// Three inserts and the sync frame, each acknowledged.
	require.Eventually(t, func() bool { return gm.framesAcked() == 4 }, eventually, tick)
	require.True(t, c.Connected())
	require.Equal(t, []string{
		"changed dataset/default/fresh@1",
		"changed dataset/default/kept@2",
		"deleted dataset/default/stale",
	}, lc.handler.seen(), "same@3 was already stored and must not be dispatched again")
	require.Equal(t, []string{"fresh@1", "kept@2", "same@3"}, resourceNames(t, lc.store))
	kept, found, err := lc.store.GetResource(storeKey("kept"))
	require.NoError(t, err)
	require.True(t, found)
	require.JSONEq(t, string(gmObject("kept", 2)), string(kept.Object))
}

func TestDeltasAreAppliedInOrder(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.start("")
	lc := newLC(t, gm)
	run(t, ctx, lc.newClient(t, lc.options(gm.url())))
	require.Eventually(t, func() bool { return gm.framesAcked() == 1 }, eventually, tick, "the empty snapshot's sync")

	gm.publish("a", 1, testNode)
	gm.publish("b", 1, testNode)
	gm.publish("c", 1, testNode)
	require.Eventually(t, func() bool { return len(lc.handler.seen()) == 3 }, eventually, tick)
	// GM ignores a late ack of a frame it has already superseded, so let these acks land first.
	require.Eventually(t, func() bool { return gm.framesAcked() == 4 }, eventually, tick)

	gm.hub.Unpublish(datasetKey("b"))
	gm.publish("a", 3, testNode)
	gm.publish("c", 4, "node-b") // moved to another node: deleted here
	want := []string{
		"changed dataset/default/a@1",
		"changed dataset/default/b@1",
		"changed dataset/default/c@1",
		"deleted dataset/default/b",
		"changed dataset/default/a@3",
		"deleted dataset/default/c",
	}
	require.Eventually(t, func() bool { return len(lc.handler.seen()) == len(want) }, eventually, tick)
	require.Equal(t, want, lc.handler.seen())
	require.Eventually(t, func() bool { return gm.framesAcked() == 7 }, eventually, tick, "every delta is acknowledged")
	require.Equal(t, []string{"a@3"}, resourceNames(t, lc.store))
}

func TestStaleVersionIsIgnoredButAcknowledged(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.publish("d", 3, testNode)
	gm.start("")
	lc := newLC(t, gm)
	_, err := lc.store.PutResource(store.Resource{Key: storeKey("d"), Version: 5, Object: []byte(`{"local":5}`)})
	require.NoError(t, err)
	run(t, ctx, lc.newClient(t, lc.options(gm.url())))

	// Acknowledged although ignored, or GM would resend it forever.
	require.Eventually(t, func() bool { return gm.framesAcked() == 2 }, eventually, tick)
	require.Empty(t, lc.handler.seen())
	d, found, err := lc.store.GetResource(storeKey("d"))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, uint64(5), d.Version)
	require.JSONEq(t, `{"local":5}`, string(d.Object))

	// A newer version does get through.
	gm.publish("d", 7, testNode)
	require.Eventually(t, func() bool { return len(lc.handler.seen()) == 1 }, eventually, tick)
	require.Equal(t, []string{"changed dataset/default/d@7"}, lc.handler.seen())
}

func TestSnapshotReplayedAfterReconnectChangesNothing(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.publish("a", 1, testNode)
	gm.publish("b", 2, testNode)
	gm.start("")
	lc := newLC(t, gm)
	c := lc.newClient(t, lc.options(gm.url()))
	run(t, ctx, c)
	require.Eventually(t, func() bool { return gm.framesAcked() == 3 }, eventually, tick)
	first := lc.handler.seen()
	require.Equal(t, []string{"changed dataset/default/a@1", "changed dataset/default/b@2"}, first)

	gm.kick()
	// The same snapshot again, every frame a duplicate, every one acknowledged.
	require.Eventually(t, func() bool { return gm.upgrades() == 2 && gm.framesAcked() == 6 }, eventually, tick)
	require.Equal(t, first, lc.handler.seen())
	require.Equal(t, []string{"a@1", "b@2"}, resourceNames(t, lc.store))
}

func TestApplyIsIdempotent(t *testing.T) {
	ctx := testContext(t)
	h := &recordingHandler{}
	st := openStore(t)
	c, err := New(Options{URL: "127.0.0.1:1", TokenFile: "/nonexistent"}, st, h)
	require.NoError(t, err)

	insert := &channel.Frame{Header: channel.Header{Namespace: "default", ResourceKind: "Dataset", ResourceName: "d", Operation: channel.OpInsert},
		Content: gmObject("d", 4), Seq: 1, Version: 4}
	update := *insert
	update.Header.Operation = channel.OpUpdate
	update.Seq = 2
	remove := &channel.Frame{Header: channel.Header{Namespace: "default", ResourceKind: "dataset", ResourceName: "d", Operation: channel.OpDelete}, Seq: 3, Version: 5}
	sync := &channel.Frame{Header: channel.Header{Operation: channel.OpSync}, Content: []byte(`[]`), Seq: 4}

	for _, f := range []*channel.Frame{insert, insert, &update, remove, remove, insert, sync, sync} {
		require.NoError(t, c.apply(ctx, f))
	}
	require.Equal(t, []string{
		"changed dataset/default/d@4",
		"deleted dataset/default/d",
	}, h.seen(), "replays, an update at the same version and an insert older than the delete change nothing")
	require.Empty(t, resourceNames(t, st))
}

func TestApplyRejectsFramesItCannotApply(t *testing.T) {
	ctx := testContext(t)
	h := &recordingHandler{}
	st := openStore(t)
	c, err := New(Options{URL: "127.0.0.1:1", TokenFile: "/nonexistent"}, st, h)
	require.NoError(t, err)
	_, err = st.PutResource(store.Resource{Key: storeKey("keep"), Version: 1, Object: []byte(`{}`)})
	require.NoError(t, err)

	header := channel.Header{Namespace: "default", ResourceKind: "dataset", ResourceName: "d", Operation: channel.OpInsert}
	cases := map[string]struct {
		frame channel.Frame
		want  string
	}{
		"insert without version":   {channel.Frame{Header: header, Content: []byte(`{}`), Seq: 1}, "without a resource version"},
		"delete without version":   {channel.Frame{Header: channel.Header{Namespace: "default", ResourceKind: "dataset", ResourceName: "d", Operation: channel.OpDelete}, Seq: 1}, "without a resource version"},
		"sync without list":        {channel.Frame{Header: channel.Header{Operation: channel.OpSync}, Seq: 1}, "without its list"},
		"sync with null":           {channel.Frame{Header: channel.Header{Operation: channel.OpSync}, Content: []byte(`null`), Seq: 1}, "sync list is null"},
		"sync with unknown fields": {channel.Frame{Header: channel.Header{Operation: channel.OpSync}, Content: []byte(`[{"kind":"dataset","name":"x","extra":1}]`), Seq: 1}, `unknown field "extra"`},
		"sync entry without name":  {channel.Frame{Header: channel.Header{Operation: channel.OpSync}, Content: []byte(`[{"kind":"dataset","namespace":"default","name":"","version":1}]`), Seq: 1}, "lacks a kind or a name"},
		"status from GM":           {channel.Frame{Header: channel.Header{Namespace: "default", ResourceKind: "dataset", ResourceName: "d", Operation: channel.OpStatus}, Content: []byte(`{}`), Seq: 1}, `may not send "status"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := c.apply(ctx, &tc.frame)
			require.ErrorIs(t, err, errInvalidFrame)
			require.ErrorContains(t, err, tc.want)
		})
	}
	require.Empty(t, h.seen())
	require.Equal(t, []string{"keep@1"}, resourceNames(t, st), "a rejected sync prunes nothing")
}

func TestApplyReportsStoreErrors(t *testing.T) {
	ctx := testContext(t)
	h := &recordingHandler{}
	st, err := store.Open(t.TempDir()+"/lc.db", store.Options{})
	require.NoError(t, err)
	c, err := New(Options{URL: "127.0.0.1:1", TokenFile: "/nonexistent"}, st, h)
	require.NoError(t, err)
	require.NoError(t, st.Close())

	err = c.apply(ctx, &channel.Frame{Header: channel.Header{Namespace: "default", ResourceKind: "dataset", ResourceName: "d", Operation: channel.OpInsert},
		Content: []byte(`{}`), Seq: 1, Version: 1})
	require.ErrorContains(t, err, "applying insert of dataset/default/d version 1")
	require.Empty(t, h.seen())
}

// scriptedGM is a websocket server that sends fixed frames and records the acks it receives.
// The real GM only sends valid frames, so this is the only way to see what the client does with
// broken ones on the wire.
type scriptedGM struct {
	mu   sync.Mutex
	acks []uint64
}

func (s *scriptedGM) seen() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.acks...)
}

func TestFramesThatCannotBeAppliedAreNotAcknowledged(t *testing.T) {
	ctx := testContext(t)
	pki := newTestPKI(t)
	encode := func(f channel.Frame) []byte {
		data, err := channel.Encode(&f)
		require.NoError(t, err)
		return data
	}
	insert := func(name string, seq, version uint64) channel.Frame {
		return channel.Frame{Header: channel.Header{Namespace: "default", ResourceKind: "dataset", ResourceName: name, Operation: channel.OpInsert},
			Content: []byte(`{}`), Seq: seq, Version: version}
	}
	sync := func(seq uint64, content string) channel.Frame {
		return channel.Frame{Header: channel.Header{Operation: channel.OpSync}, Content: []byte(content), Seq: seq}
	}
	script := [][]byte{
		encode(insert("a", 1, 0)), // no version: cannot be ordered
		[]byte(`not a frame`),
		encode(insert("b", 2, 1)),
		encode(sync(3, `null`)),
		encode(sync(4, `[{"kind":"dataset","namespace":"default","name":"b","version":1}]`)),
	}
	gm := &scriptedGM{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = ws.Close() }()
		for _, frame := range script {
			if ws.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		}
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			f, err := channel.Decode(data, 0)
			if err != nil || f.Header.Operation != channel.OpAck {
				continue
			}
			gm.mu.Lock()
			gm.acks = append(gm.acks, f.Ack)
			gm.mu.Unlock()
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}
	srv.StartTLS()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})

	lc := &lcFixture{dir: t.TempDir(), store: openStore(t), handler: &recordingHandler{}}
	lc.tokenFile, lc.caFile = lc.dir+"/token", lc.dir+"/ca.crt"
	writeFileAtomically(t, lc.tokenFile, []byte("anything"))
	pki.writeCA(t, lc.caFile)
	run(t, ctx, lc.newClient(t, lc.options("wss://"+srv.Listener.Addr().String()+"/")))

	require.Eventually(t, func() bool { return len(gm.seen()) >= 2 }, eventually, tick)
	require.Equal(t, []uint64{2, 4}, gm.seen(), "only the applicable frames are acknowledged")
	require.Equal(t, []string{"changed dataset/default/b@1"}, lc.handler.seen())
}

func TestParseSyncLowersKinds(t *testing.T) {
	entries := []channel.SyncEntry{{Key: channel.Key{Kind: "Dataset", Namespace: "default", Name: "d"}, Version: 3}}
	data, err := json.Marshal(entries)
	require.NoError(t, err)
	present, err := parseSync(data)
	require.NoError(t, err)
	require.Equal(t, map[store.ResourceKey]uint64{storeKey("d"): 3}, present)

	present, err = parseSync([]byte(`[]`))
	require.NoError(t, err)
	require.Empty(t, present)
	require.NotNil(t, present, "an empty snapshot is a valid, empty list")
}

func FuzzParseSync(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"kind":"dataset","namespace":"default","name":"d","version":1}]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[{"kind":"","name":""}] []`))
	f.Fuzz(func(t *testing.T, data []byte) {
		present, err := parseSync(data)
		if err != nil {
			if !errors.Is(err, errInvalidFrame) {
				t.Fatalf("error does not wrap errInvalidFrame: %v", err)
			}
			return
		}
		for key := range present {
			if key.Kind == "" || key.Name == "" {
				t.Fatalf("accepted an entry without kind or name: %v", key)
			}
		}
	})
}

// snapshotHandler records, besides the changes, each applied snapshot.
type snapshotHandler struct{ recordingHandler }

func (h *snapshotHandler) SnapshotApplied(context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, "snapshot applied")
}

// TestASnapshotObserverHearsOfEachSnapshotAfterItsPruning: the observer is told once the store
// holds exactly what GM binds to the node (after the sync pruned the rest), once per sync frame,
// and never for a frame that is not a sync.
func TestASnapshotObserverHearsOfEachSnapshotAfterItsPruning(t *testing.T) {
	ctx := testContext(t)
	h := &snapshotHandler{}
	st := openStore(t)
	_, err := st.PutResource(store.Resource{Key: storeKey("stale"), Version: 1, Object: []byte(`{}`)})
	require.NoError(t, err)
	c, err := New(Options{URL: "127.0.0.1:1", TokenFile: "/nonexistent"}, st, h)
	require.NoError(t, err)

	insert := &channel.Frame{Header: channel.Header{Namespace: "default", ResourceKind: "dataset", ResourceName: "d", Operation: channel.OpInsert},
		Content: gmObject("d", 4), Seq: 1, Version: 4}
	sync := &channel.Frame{Header: channel.Header{Operation: channel.OpSync}, Content: []byte(`[{"kind":"dataset","namespace":"default","name":"d","version":4}]`), Seq: 2}
	for _, f := range []*channel.Frame{insert, sync, sync} {
		require.NoError(t, c.apply(ctx, f))
	}
	require.Equal(t, []string{
		"changed dataset/default/d@4",
		"deleted dataset/default/stale",
		"snapshot applied",
		"snapshot applied",
	}, h.seen())
}
