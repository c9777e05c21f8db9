package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

const testBudget = 2 << 20

func metrics(stream string) EnqueueOptions {
	return EnqueueOptions{Class: ClassWorkerMetrics, Stream: stream}
}

var workerEvent = EnqueueOptions{Class: ClassWorkerEvent}

// payloadOf returns a payload of n bytes that starts with label, so tests can tell entries apart.
func payloadOf(label string, n int) []byte {
	p := bytes.Repeat([]byte("x"), n)
	copy(p, label)
	return p
}

func statsOf(t *testing.T, s *Store) OutboxStats {
	t.Helper()
	stats, err := s.OutboxStats()
	require.NoError(t, err)
	return stats
}

// storedUsageMatchesEntries checks, without going through Open's repair, that the usage and the
// stream index kept in the file are exactly what the entries add up to.
func storedUsageMatchesEntries(t *testing.T, db *bolt.DB) usage {
	t.Helper()
	var stored, counted usage
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		var err error
		stored, err = decodeUsage(tx.Bucket(bucketMeta).Get(metaOutboxUsage))
		if err != nil {
			return err
		}
		var streams map[string]uint64
		counted, streams, _ = scanOutbox(tx.Bucket(bucketOutbox))
		indexed := map[string]uint64{}
		if err := tx.Bucket(bucketOutboxStreams).ForEach(func(k, v []byte) error {
			entry, err := decodeOutboxEntry(v, tx.Bucket(bucketOutbox).Get(v))
			if err != nil {
				return fmt.Errorf("index entry %q points at %x: %w", k, v, err)
			}
			indexed[string(k)] = entry.Seq
			return nil
		}); err != nil {
			return err
		}
		require.Equal(t, streams, indexed, "stream index")
		return nil
	}))
	require.Equal(t, counted.String(), stored.String(), "stored usage disagrees with the entries")
	return stored
}

// A worker floods the outbox with large metrics reports on ever new streams and with events:
// the accounted bytes never pass the budget nor the worker shares, the file stays near the
// budget, and the LC's own (stage) reports still get in, in the part workers cannot take.
func TestWorkerFloodCannotPassTheBudget(t *testing.T) {
	s := openTestStore(t, Options{MaxOutboxBytes: testBudget})
	const reportSize = 60 << 10
	var metricsRefused, eventsRefused int
	for i := range 200 {
		// New streams: nothing to coalesce, every report needs new room.
		_, err := s.EnqueueWith(payloadOf(fmt.Sprintf("m%d", i), reportSize), metrics(fmt.Sprintf("worker-%d", i)))
		if err != nil {
			require.ErrorIs(t, err, ErrOutboxFull)
			metricsRefused++
		}
		_, err = s.EnqueueWith(payloadOf(fmt.Sprintf("e%d", i), reportSize), workerEvent)
		if err != nil {
			require.ErrorIs(t, err, ErrOutboxFull)
			eventsRefused++
		}
		stats := statsOf(t, s)
		require.LessOrEqual(t, stats.Bytes(), uint64(testBudget))
		require.LessOrEqual(t, stats.Classes[ClassWorkerMetrics].Bytes, uint64(testBudget*MetricsSharePercent/100))
		require.LessOrEqual(t, stats.Classes[ClassWorkerMetrics].Bytes+stats.Classes[ClassWorkerEvent].Bytes, uint64(testBudget*WorkerSharePercent/100))
	}
	require.Greater(t, metricsRefused, 150, "the flood never hit the metrics share")
	require.Greater(t, eventsRefused, 150, "the flood never hit the worker share")
	stats := statsOf(t, s)
	require.Equal(t, uint64(metricsRefused), stats.Classes[ClassWorkerMetrics].Rejected)
	require.Equal(t, uint64(eventsRefused), stats.Classes[ClassWorkerEvent].Rejected)
	// The worker shares are (nearly) used up: less than one more report would fit in each.
	require.Greater(t, stats.Classes[ClassWorkerMetrics].Bytes, uint64(testBudget*MetricsSharePercent/100-reportSize-200))
	workerBytes := stats.Classes[ClassWorkerMetrics].Bytes + stats.Classes[ClassWorkerEvent].Bytes
	require.Greater(t, workerBytes, uint64(testBudget*WorkerSharePercent/100-reportSize-200))

	// The budget is full as far as workers are concerned; stage reports still get in, in
	// order, until the LC's own part is used too.
	var stageSeqs []uint64
	for i := 0; ; i++ {
		seq, err := s.Enqueue(payloadOf(fmt.Sprintf("stage %d", i), 4<<10))
		if err != nil {
			require.ErrorIs(t, err, ErrOutboxFull)
			require.ErrorContains(t, err, "budget")
			break
		}
		stageSeqs = append(stageSeqs, seq)
	}
	require.Greater(t, len(stageSeqs), (testBudget/2)/(4<<10+64), "stage reports did not get the part workers cannot take")
	stats = statsOf(t, s)
	require.LessOrEqual(t, stats.Bytes(), uint64(testBudget))
	require.Equal(t, uint64(1), stats.Classes[ClassOwn].Rejected)

	// The file stays within the budget and bbolt's page and growth slack (pages, freelist, meta).
	info, err := os.Stat(s.Path())
	require.NoError(t, err)
	t.Logf("accounted %d bytes of a %d-byte budget; file %d bytes", stats.Bytes(), testBudget, info.Size())
	require.LessOrEqual(t, info.Size(), int64(2*testBudget))

	// Nothing accepted was lost: every stage report is there, in order, after the worker reports.
	pending, err := s.Pending(0, 0)
	require.NoError(t, err)
	var gotStage []uint64
	for _, e := range pending {
		if e.Class == ClassOwn {
			gotStage = append(gotStage, e.Seq)
		}
	}
	require.Equal(t, stageSeqs, gotStage)
	storedUsageMatchesEntries(t, s.db)
}

// Coalescing keeps only the newest report of each stream, in the place of the newest; reports
// that are not coalesced keep their order.
func TestCoalescingKeepsTheNewestPerStream(t *testing.T) {
	s := openTestStore(t, Options{})
	steps := []struct {
		payload string
		opts    EnqueueOptions
	}{
		{"a1", metrics("a")},
		{"stage1", EnqueueOptions{}},
		{"b1", metrics("b")},
		{"event1", workerEvent},
		{"a2", metrics("a")},
		{"stage2", EnqueueOptions{}},
		{"a3", metrics("a")},
		{"b2", metrics("b")},
		{"event2", workerEvent},
	}
	for _, step := range steps {
		_, err := s.EnqueueWith([]byte(step.payload), step.opts)
		require.NoError(t, err)
	}
	pending, err := s.Pending(0, 0)
	require.NoError(t, err)
	var got []string
	for _, e := range pending {
		got = append(got, string(e.Payload))
	}
	require.Equal(t, []string{"stage1", "event1", "stage2", "a3", "b2", "event2"}, got)
	require.Equal(t, []uint64{2, 4, 6, 7, 8, 9}, seqsOf(pending))
	require.Equal(t, "a", pending[3].Stream)
	require.Equal(t, ClassWorkerMetrics, pending[3].Class)
	require.Equal(t, uint64(3), statsOf(t, s).Coalesced)
	n, err := s.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, 6, n)
	storedUsageMatchesEntries(t, s.db)
}

// A report already sent (in flight) is replaced like any other: GM has seen it, and its ack
// must not remove the newer report, which is sent after it.
func TestCoalescingAfterSendAndAck(t *testing.T) {
	s := openTestStore(t, Options{})
	first, err := s.EnqueueWith([]byte("a1"), metrics("a"))
	require.NoError(t, err)
	sent, err := s.Pending(0, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{first}, seqsOf(sent))

	second, err := s.EnqueueWith([]byte("a2"), metrics("a"))
	require.NoError(t, err)
	removed, err := s.Ack(first) // GM acknowledges the report it was sent.
	require.NoError(t, err)
	require.Equal(t, 0, removed, "the replaced entry is gone already")
	pending, err := s.Pending(first, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{second}, seqsOf(pending))

	// Once GM acknowledged the newest, the stream starts afresh: nothing is replaced.
	_, err = s.Ack(second)
	require.NoError(t, err)
	storedUsageMatchesEntries(t, s.db)
	third, err := s.EnqueueWith([]byte("a3"), metrics("a"))
	require.NoError(t, err)
	require.Equal(t, second+1, third)
	require.Equal(t, uint64(1), statsOf(t, s).Coalesced)
	storedUsageMatchesEntries(t, s.db)
}

// A refused report changes nothing: the queued report of its stream stays, no number is used.
func TestRefusedReportChangesNothing(t *testing.T) {
	s := openTestStore(t, Options{MaxOutboxBytes: MinOutboxBytes})
	limit := MinOutboxBytes * MetricsSharePercent / 100
	_, err := s.EnqueueWith(payloadOf("small", 1000), metrics("a"))
	require.NoError(t, err)
	before := statsOf(t, s)
	last, err := s.LastSeq()
	require.NoError(t, err)

	_, err = s.EnqueueWith(payloadOf("too big", int(limit)), metrics("a"))
	require.ErrorIs(t, err, ErrOutboxFull)
	require.ErrorContains(t, err, "worker_metrics report")
	require.ErrorContains(t, err, "25% of the 1048576-byte budget")

	after := statsOf(t, s)
	require.Equal(t, before.Bytes(), after.Bytes())
	require.Equal(t, uint64(1), after.Classes[ClassWorkerMetrics].Rejected)
	pending, err := s.Pending(0, 0)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, payloadOf("small", 1000), pending[0].Payload)
	lastAfter, err := s.LastSeq()
	require.NoError(t, err)
	require.Equal(t, last, lastAfter)
	storedUsageMatchesEntries(t, s.db)
}

// Replacing a report frees its room first: a stream whose report alone fills the metrics
// share can still be updated.
func TestCoalescingReusesTheRoomOfTheReplacedReport(t *testing.T) {
	s := openTestStore(t, Options{MaxOutboxBytes: MinOutboxBytes})
	size := int(MinOutboxBytes*MetricsSharePercent/100) - 200
	for i := range 5 {
		_, err := s.EnqueueWith(payloadOf(fmt.Sprintf("r%d", i), size), metrics("a"))
		require.NoError(t, err, "update %d", i)
	}
	_, err := s.EnqueueWith(payloadOf("other", size), metrics("b"))
	require.ErrorIs(t, err, ErrOutboxFull)
}

// The accounting is kept in the file: a restart starts from the same usage, and the bounds
// hold across it.
func TestRestartKeepsTheAccounting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lc.db")
	s := openTestStoreAt(t, path, Options{MaxOutboxBytes: testBudget})
	for i := range 40 {
		_, err := s.Enqueue(payloadOf(fmt.Sprintf("stage %d", i), 3000))
		require.NoError(t, err)
		_, err = s.EnqueueWith(payloadOf(fmt.Sprintf("m %d", i), 20000), metrics(fmt.Sprintf("w%d", i%7)))
		require.NoError(t, err)
		_, err = s.EnqueueWith(payloadOf(fmt.Sprintf("e %d", i), 10000), workerEvent)
		require.NoError(t, err)
	}
	_, err := s.Ack(50)
	require.NoError(t, err)
	before := statsOf(t, s)
	stored := storedUsageMatchesEntries(t, s.db)
	require.NoError(t, s.Close())

	s = openTestStoreAt(t, path, Options{MaxOutboxBytes: testBudget})
	after := statsOf(t, s)
	require.Equal(t, before.Classes[ClassOwn].Bytes, after.Classes[ClassOwn].Bytes)
	require.Equal(t, before.Classes[ClassWorkerEvent].Bytes, after.Classes[ClassWorkerEvent].Bytes)
	require.Equal(t, before.Classes[ClassWorkerMetrics].Bytes, after.Classes[ClassWorkerMetrics].Bytes)
	require.Equal(t, before.Classes[ClassWorkerMetrics].Reports, after.Classes[ClassWorkerMetrics].Reports)
	require.Equal(t, stored.String(), storedUsageMatchesEntries(t, s.db).String())

	// Coalescing continues across the restart: the index survived.
	n, err := s.OutboxLen()
	require.NoError(t, err)
	_, err = s.EnqueueWith([]byte("m new"), metrics("w3"))
	require.NoError(t, err)
	n2, err := s.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, n, n2)

	// A smaller budget after a restart applies at once to what is queued.
	require.NoError(t, s.Close())
	s = openTestStoreAt(t, path, Options{MaxOutboxBytes: MinOutboxBytes})
	_, err = s.EnqueueWith(payloadOf("event", 400<<10), workerEvent)
	require.ErrorIs(t, err, ErrOutboxFull)
	require.ErrorContains(t, err, "50% of the 1048576-byte budget")
}

// Open repairs a damaged stream index and usage from the entries, and drops the count kept by
// binaries without a byte budget.
func TestOpenRebuildsTheStreamIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lc.db")
	s := openTestStoreAt(t, path, Options{})
	_, err := s.EnqueueWith([]byte("a1"), metrics("a"))
	require.NoError(t, err)
	_, err = s.EnqueueWith([]byte("b1"), metrics("b"))
	require.NoError(t, err)
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		index := tx.Bucket(bucketOutboxStreams)
		if err := index.Delete([]byte("a")); err != nil {
			return err
		}
		if err := index.Put([]byte("ghost"), outboxKey(77)); err != nil {
			return err
		}
		return putMetaUint64(tx.Bucket(bucketMeta), metaOutboxPending, 2)
	}))
	require.NoError(t, s.Close())

	s = openTestStoreAt(t, path, Options{})
	storedUsageMatchesEntries(t, s.db)
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		require.Nil(t, tx.Bucket(bucketMeta).Get(metaOutboxPending))
		return nil
	}))
	_, err = s.EnqueueWith([]byte("a2"), metrics("a"))
	require.NoError(t, err)
	pending, err := s.Pending(0, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{2, 3}, seqsOf(pending), "a1 was not replaced after the index was rebuilt")
}

func TestEnqueueOptionsAndBudgetValidated(t *testing.T) {
	s := openTestStore(t, Options{})
	tests := map[string]struct {
		opts EnqueueOptions
		want string
	}{
		"metrics without a stream": {opts: EnqueueOptions{Class: ClassWorkerMetrics}, want: "needs a stream"},
		"event with a stream":      {opts: EnqueueOptions{Class: ClassWorkerEvent, Stream: "a"}, want: "only worker-metrics reports are coalesced, not worker_event reports"},
		"own with a stream":        {opts: EnqueueOptions{Stream: "a"}, want: "not own reports"},
		"unknown class":            {opts: EnqueueOptions{Class: 9}, want: "unknown report class 9"},
		"stream too long":          {opts: metrics(string(make([]byte, 2000))), want: "stream is 2000 bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := s.EnqueueWith([]byte("x"), tc.opts)
			require.ErrorContains(t, err, tc.want)
			require.NotErrorIs(t, err, ErrOutboxFull)
		})
	}

	_, err := Open(filepath.Join(t.TempDir(), "lc.db"), Options{MaxOutboxBytes: 1000})
	require.ErrorContains(t, err, "outbox budget of 1000 bytes is below the minimum of 1048576 bytes")
	_, err = Open(filepath.Join(t.TempDir(), "lc.db"), Options{MaxOutboxBytes: -1})
	require.ErrorContains(t, err, "below the minimum")
	require.Equal(t, uint64(DefaultMaxOutboxBytes), statsOf(t, s).BudgetBytes)
}

// The count bound has the same shares as the byte budget: many tiny worker reports cannot use
// up the number of entries stage reports need either.
func TestWorkerSharesOfTheCount(t *testing.T) {
	s := openTestStore(t, Options{MaxOutbox: 8})
	for i := range 2 {
		_, err := s.EnqueueWith([]byte("m"), metrics(fmt.Sprintf("w%d", i)))
		require.NoError(t, err)
	}
	_, err := s.EnqueueWith([]byte("m"), metrics("w2"))
	require.ErrorIs(t, err, ErrOutboxFull)
	require.ErrorContains(t, err, "worker-metrics reports may take 25% of the outbox, 2 reports, and 2 are pending")
	_, err = s.EnqueueWith([]byte("m again"), metrics("w1"))
	require.NoError(t, err, "replacing a report needs no new entry")
	for range 2 {
		_, err = s.EnqueueWith([]byte("e"), workerEvent)
		require.NoError(t, err)
	}
	_, err = s.EnqueueWith([]byte("e"), workerEvent)
	require.ErrorContains(t, err, "worker reports may take 50% of the outbox, 4 reports, and 4 are pending")
	enqueueN(t, s, 4)
	_, err = s.Enqueue([]byte("stage"))
	require.ErrorContains(t, err, "8 reports pending (limit 8)")
}
