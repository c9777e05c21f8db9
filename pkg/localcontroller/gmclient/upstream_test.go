package gmclient

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

func samples(n int) []byte { return fmt.Appendf(nil, `{"numberOfSamples":%d}`, n) }

func TestReportsQueuedWhileGMIsDownAreDeliveredInOrderExactlyOnce(t *testing.T) {
	ctx := testContext(t)
	addr := reserveAddr(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.publish("d1", 1, testNode)
	gm.publish("d2", 1, testNode)

	lc := newLC(t, gm)
	c := lc.newClient(t, lc.options("wss://"+addr+"/"))
	run(t, ctx, c)

	var want []string
	for i := 1; i <= 6; i++ {
		name := []string{"d1", "d2"}[i%2]
		_, err := EnqueueReport(lc.store, datasetKey(name), samples(i))
		require.NoError(t, err)
		c.Notify()
		want = append(want, name+":"+string(samples(i)))
	}
	// GM is not listening: the client keeps dialling and the reports wait on disk.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(c.metrics.dials.WithLabelValues(dialNetworkError)) >= 2
	}, eventually, tick)
	require.False(t, c.Connected())
	require.Equal(t, 6, outboxLen(t, lc.store))

	// Cut the first connection while GM handles the third report, so the acknowledgements of
	// the first reports may be lost and everything still pending is replayed.
	var once sync.Once
	gm.setOnReport(func(count int) {
		if count == 3 {
			once.Do(gm.kick)
		}
	})
	gm.start(addr)

	require.Eventually(t, func() bool { return outboxLen(t, lc.store) == 0 }, eventually, tick)
	require.Equal(t, want, gm.acceptedReports(), "each report exactly once, in order")
	require.GreaterOrEqual(t, gm.upgrades(), 2, "the first connection was cut")

	// And the channel keeps working: a report enqueued while connected goes out on Notify.
	_, err := EnqueueReport(lc.store, datasetKey("d1"), samples(7))
	require.NoError(t, err)
	c.Notify()
	want = append(want, "d1:"+string(samples(7)))
	require.Eventually(t, func() bool { return len(gm.acceptedReports()) == len(want) }, eventually, tick)
	require.Eventually(t, func() bool { return outboxLen(t, lc.store) == 0 }, eventually, tick)
	require.Equal(t, want, gm.acceptedReports())
}

func TestReportsBeyondTheInflightWindowAreSentAsAcksArrive(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.publish("d", 1, testNode)
	lc := newLC(t, gm)
	var want []string
	for i := 1; i <= 25; i++ {
		_, err := EnqueueReport(lc.store, datasetKey("d"), samples(i))
		require.NoError(t, err)
		want = append(want, "d:"+string(samples(i)))
	}
	gm.start("")
	opts := lc.options(gm.url())
	opts.MaxInflight = 2
	run(t, ctx, lc.newClient(t, opts))

	require.Eventually(t, func() bool { return outboxLen(t, lc.store) == 0 }, eventually, tick)
	require.Equal(t, want, gm.acceptedReports())
}

func TestReportRejectedByGMIsDroppedFromTheOutbox(t *testing.T) {
	ctx, logs := bufferedContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.publish("mine", 1, testNode)
	gm.publish("theirs", 1, "node-b")
	gm.start("")
	lc := newLC(t, gm)
	c := lc.newClient(t, lc.options(gm.url()))
	run(t, ctx, c)
	require.Eventually(t, c.Connected, eventually, tick)

	// The rejected report comes last, so no later acknowledgement removes it on its behalf.
	for _, name := range []string{"mine", "theirs"} {
		_, err := EnqueueReport(lc.store, datasetKey(name), samples(1))
		require.NoError(t, err)
	}
	c.Notify()

	require.Eventually(t, func() bool { return outboxLen(t, lc.store) == 0 }, eventually, tick)
	require.Equal(t, []string{"mine:" + string(samples(1))}, gm.acceptedReports())
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.reportsRejected))
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.reportsAccepted))
	require.Eventually(t, func() bool {
		return containsAll(logs.String(), "GM rejected a report; dropping it", "dataset/default/theirs is not bound to node node-a")
	}, eventually, tick, "the rejection is logged with GM's reason")

	// Dropped for good: a reconnect does not resend it.
	gm.kick()
	require.Eventually(t, func() bool { return gm.upgrades() == 2 && c.Connected() }, eventually, tick)
	_, err := EnqueueReport(lc.store, datasetKey("mine"), samples(2))
	require.NoError(t, err)
	c.Notify()
	require.Eventually(t, func() bool { return outboxLen(t, lc.store) == 0 && len(gm.acceptedReports()) == 2 }, eventually, tick)
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.reportsRejected))
}

func TestUndeliverableOutboxEntriesAreDroppedInTurn(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.publish("d", 1, testNode)
	lc := newLC(t, gm)
	dbPath := lc.store.Path()

	// 1 fine, 2 damaged on disk, 3 not a report, 4 too large for the frame limit, 5 fine.
	_, err := EnqueueReport(lc.store, datasetKey("d"), samples(1))
	require.NoError(t, err)
	_, err = EnqueueReport(lc.store, datasetKey("d"), samples(2))
	require.NoError(t, err)
	_, err = lc.store.Enqueue([]byte(`not a report`))
	require.NoError(t, err)
	_, err = EnqueueReport(lc.store, datasetKey("d"), fmt.Appendf(nil, `{"blob":%q}`, strings.Repeat("x", 4096)))
	require.NoError(t, err)
	_, err = EnqueueReport(lc.store, datasetKey("d"), samples(5))
	require.NoError(t, err)
	require.NoError(t, lc.store.Close())
	damageOutboxEntry(t, dbPath, 2)
	st, err := store.Open(dbPath, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	lc.store = st

	gm.start("")
	opts := lc.options(gm.url())
	opts.MaxFrameBytes = 2048
	c := lc.newClient(t, opts)
	run(t, ctx, c)

	require.Eventually(t, func() bool { return outboxLen(t, st) == 0 }, eventually, tick)
	require.Equal(t, []string{"d:" + string(samples(1)), "d:" + string(samples(5))}, gm.acceptedReports())
	require.Equal(t, 3.0, testutil.ToFloat64(c.metrics.reportsDropped))
}

// damageOutboxEntry flips a byte of the stored report seq, as a bad sector would.
func damageOutboxEntry(t *testing.T, path string, seq uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		bucket := tx.Bucket([]byte("outbox"))
		key := []byte{0, 0, 0, 0, 0, 0, 0, byte(seq)}
		value := append([]byte(nil), bucket.Get(key)...)
		require.NotEmpty(t, value)
		value[len(value)-1] ^= 0xff
		return bucket.Put(key, value)
	}))
}

func TestEncodeReportRoundTrip(t *testing.T) {
	payload, err := EncodeReport(Report{Key: channel.Key{Kind: "Dataset", Namespace: "default", Name: "d"}, Content: []byte(`{ "numberOfSamples": 3 }`)})
	require.NoError(t, err)
	require.JSONEq(t, `{"key":{"kind":"dataset","namespace":"default","name":"d"},"content":{"numberOfSamples":3}}`, string(payload))
	r, err := DecodeReport(payload)
	require.NoError(t, err)
	require.Equal(t, Report{Key: datasetKey("d"), Content: []byte(`{"numberOfSamples":3}`)}, r)

	st := openStore(t)
	seq, err := EnqueueReport(st, datasetKey("d"), samples(1))
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	entries, err := st.Pending(0, 0)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	r, err = DecodeReport(entries[0].Payload)
	require.NoError(t, err)
	require.Equal(t, samples(1), r.Content)
}

func TestEncodeReportRejectsReportsGMWouldIgnore(t *testing.T) {
	cases := map[string]struct {
		report Report
		want   string
	}{
		"no kind":          {Report{Key: channel.Key{Namespace: "default", Name: "d"}, Content: samples(1)}, "resourceKind"},
		"bad namespace":    {Report{Key: channel.Key{Kind: "dataset", Namespace: "Default", Name: "d"}, Content: samples(1)}, "namespace"},
		"bad name":         {Report{Key: channel.Key{Kind: "dataset", Namespace: "default", Name: "d/e"}, Content: samples(1)}, "resourceName"},
		"no content":       {Report{Key: datasetKey("d")}, "without content"},
		"content not json": {Report{Key: datasetKey("d"), Content: []byte(`samples=3`)}, "not JSON"},
		"too large":        {Report{Key: datasetKey("d"), Content: fmt.Appendf(nil, `%q`, strings.Repeat("x", channel.DefaultMaxFrameBytes))}, "more than the channel's limit"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := EncodeReport(tc.report)
			require.ErrorContains(t, err, tc.want)
		})
	}
	st := openStore(t)
	_, err := EnqueueReport(st, datasetKey("d"), nil)
	require.Error(t, err)
	require.Equal(t, 0, outboxLen(t, st), "nothing undeliverable reaches the outbox")
}

func TestDecodeReportRejectsForeignPayloads(t *testing.T) {
	for name, payload := range map[string]string{
		"not json":        `report`,
		"unknown field":   `{"key":{"kind":"dataset","namespace":"default","name":"d"},"content":{},"extra":1}`,
		"trailing data":   `{"key":{"kind":"dataset","namespace":"default","name":"d"},"content":{}} {}`,
		"upper-case kind": `{"key":{"kind":"Dataset","namespace":"default","name":"d"},"content":{}}`,
		"no content":      `{"key":{"kind":"dataset","namespace":"default","name":"d"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeReport([]byte(payload))
			require.Error(t, err)
		})
	}
}

func FuzzDecodeReport(f *testing.F) {
	f.Add([]byte(`{"key":{"kind":"dataset","namespace":"default","name":"d"},"content":{"numberOfSamples":1}}`))
	f.Add([]byte(`{"key":{},"content":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeReport(payload)
		if err != nil {
			return
		}
		// Whatever decodes becomes a frame GM accepts, and encodes back to an equal report.
		frame := r.frame(1)
		if err := frame.Validate(); err != nil {
			t.Fatalf("decoded report makes an invalid frame: %v", err)
		}
		again, err := EncodeReport(r)
		if err != nil {
			// Only the size bound may differ: EncodeReport refuses what the wire cannot carry.
			if !strings.Contains(err.Error(), "limit") {
				t.Fatalf("re-encoding a decoded report: %v", err)
			}
			return
		}
		back, err := DecodeReport(again)
		if err != nil {
			t.Fatalf("decoding a re-encoded report: %v", err)
		}
		if back.Key != r.Key {
			t.Fatalf("round trip changed the key: %v != %v", back.Key, r.Key)
		}
	})
}
