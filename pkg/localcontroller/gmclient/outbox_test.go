package gmclient

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Worker metrics queued while GM is away are coalesced to the newest per stream; GM receives
// that newest one, after the reports queued before it, and accepts the gaps coalescing leaves
// in the sequence numbers. Reports that are not coalesced all arrive, in order.
func TestCoalescedReportsReachGMAsTheNewest(t *testing.T) {
	ctx := testContext(t)
	addr := reserveAddr(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.publish("d1", 1, testNode)
	gm.publish("d2", 1, testNode)
	lc := newLC(t, gm)
	c := lc.newClient(t, lc.options("wss://"+addr+"/"))
	run(t, ctx, c)

	metrics := func(stream string) store.EnqueueOptions {
		return store.EnqueueOptions{Class: store.ClassWorkerMetrics, Stream: stream}
	}
	steps := []struct {
		name string
		n    int
		opts store.EnqueueOptions
	}{
		{"d1", 1, metrics("w1")},
		{"d2", 2, store.EnqueueOptions{}},
		{"d1", 3, metrics("w1")},
		{"d2", 4, store.EnqueueOptions{Class: store.ClassWorkerEvent}},
		{"d1", 5, metrics("w2")},
		{"d1", 6, metrics("w1")},
		{"d2", 7, store.EnqueueOptions{}},
	}
	for _, step := range steps {
		_, err := EnqueueReportAs(lc.store, datasetKey(step.name), samples(step.n), step.opts)
		require.NoError(t, err)
	}
	require.Equal(t, 5, outboxLen(t, lc.store))

	gm.start(addr)
	want := []string{"d2:" + string(samples(2)), "d2:" + string(samples(4)), "d1:" + string(samples(5)),
		"d1:" + string(samples(6)), "d2:" + string(samples(7))}
	require.Eventually(t, func() bool { return outboxLen(t, lc.store) == 0 }, eventually, tick)
	require.Equal(t, want, gm.acceptedReports())

	// After delivery a stream starts afresh: the next report is sent, not lost.
	_, err := EnqueueReportAs(lc.store, datasetKey("d1"), samples(8), metrics("w1"))
	require.NoError(t, err)
	c.Notify()
	require.Eventually(t, func() bool { return len(gm.acceptedReports()) == len(want)+1 }, eventually, tick)
}

func TestOutboxMetrics(t *testing.T) {
	st, err := store.Open(t.TempDir()+"/lc.db", store.Options{MaxOutboxBytes: store.MinOutboxBytes})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	reg := prometheus.NewRegistry()
	_, err = New(Options{URL: "gm:9000", TokenFile: "t", Registerer: reg}, st, &recordingHandler{})
	require.NoError(t, err)

	_, err = EnqueueReport(st, datasetKey("d"), samples(1))
	require.NoError(t, err)
	for i := range 3 {
		_, err = EnqueueReportAs(st, datasetKey("d"), samples(i), store.EnqueueOptions{Class: store.ClassWorkerMetrics, Stream: "w"})
		require.NoError(t, err)
	}
	big := fmt.Appendf(nil, `{"blob":%q}`, strings.Repeat("x", 300<<10))
	_, err = EnqueueReportAs(st, datasetKey("d"), big, store.EnqueueOptions{Class: store.ClassWorkerMetrics, Stream: "w2"})
	require.ErrorIs(t, err, store.ErrOutboxFull)

	stats, err := st.OutboxStats()
	require.NoError(t, err)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP sedna_lc_outbox_budget_bytes Byte budget of the LC's outbox of reports to GM (--outbox-max-bytes).
# TYPE sedna_lc_outbox_budget_bytes gauge
sedna_lc_outbox_budget_bytes 1.048576e+06
# HELP sedna_lc_outbox_coalesced_total Queued worker-metrics reports replaced by a newer report of the same worker.
# TYPE sedna_lc_outbox_coalesced_total counter
sedna_lc_outbox_coalesced_total 2
# HELP sedna_lc_outbox_rejected_total Reports refused because the outbox or their class's share of it was full, by class.
# TYPE sedna_lc_outbox_rejected_total counter
sedna_lc_outbox_rejected_total{class="own"} 0
sedna_lc_outbox_rejected_total{class="worker_event"} 0
sedna_lc_outbox_rejected_total{class="worker_metrics"} 1
# HELP sedna_lc_outbox_reports Reports waiting in the outbox, by class.
# TYPE sedna_lc_outbox_reports gauge
sedna_lc_outbox_reports{class="own"} 1
sedna_lc_outbox_reports{class="worker_event"} 0
sedna_lc_outbox_reports{class="worker_metrics"} 1
# HELP sedna_lc_outbox_bytes Accounted bytes of the reports waiting in the outbox, by class.
# TYPE sedna_lc_outbox_bytes gauge
sedna_lc_outbox_bytes{class="own"} %d
sedna_lc_outbox_bytes{class="worker_event"} 0
sedna_lc_outbox_bytes{class="worker_metrics"} %d
`, stats.Classes[store.ClassOwn].Bytes, stats.Classes[store.ClassWorkerMetrics].Bytes)),
		"sedna_lc_outbox_budget_bytes", "sedna_lc_outbox_coalesced_total", "sedna_lc_outbox_rejected_total",
		"sedna_lc_outbox_reports", "sedna_lc_outbox_bytes"))
	require.Positive(t, stats.Classes[store.ClassOwn].Bytes)
}
