package store

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func enqueueN(t *testing.T, s *Store, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		seq, err := s.Enqueue([]byte(fmt.Sprintf("report-%d", i)))
		require.NoError(t, err)
		seqs = append(seqs, seq)
	}
	return seqs
}

func seqsOf(entries []OutboxEntry) []uint64 {
	var seqs []uint64
	for _, e := range entries {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func TestEnqueueOrderAndContent(t *testing.T) {
	clock := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := openTestStore(t, Options{Now: func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}})
	require.Equal(t, []uint64{1, 2, 3, 4}, enqueueN(t, s, 4))

	entries, err := s.Pending(0, 0)
	require.NoError(t, err)
	require.Len(t, entries, 4)
	for i, e := range entries {
		require.Equal(t, uint64(i+1), e.Seq)
		require.Equal(t, []byte(fmt.Sprintf("report-%d", i)), e.Payload)
		require.True(t, e.EnqueuedAt.Equal(time.Date(2025, 3, 1, 12, 0, i+1, 0, time.UTC)), "entry %d stamped %s", e.Seq, e.EnqueuedAt)
	}
	last, err := s.LastSeq()
	require.NoError(t, err)
	require.Equal(t, uint64(4), last)

	_, err = s.Enqueue(nil)
	require.ErrorContains(t, err, "payload is empty")
}

func TestPendingPaging(t *testing.T) {
	s := openTestStore(t, Options{})
	enqueueN(t, s, 10)
	_, err := s.Ack(3)
	require.NoError(t, err)

	tests := map[string]struct {
		afterSeq uint64
		limit    int
		want     []uint64
	}{
		"all":                      {afterSeq: 0, limit: 0, want: []uint64{4, 5, 6, 7, 8, 9, 10}},
		"negative limit means all": {afterSeq: 0, limit: -1, want: []uint64{4, 5, 6, 7, 8, 9, 10}},
		"first page":               {afterSeq: 0, limit: 3, want: []uint64{4, 5, 6}},
		"next page":                {afterSeq: 6, limit: 3, want: []uint64{7, 8, 9}},
		"last short page":          {afterSeq: 9, limit: 3, want: []uint64{10}},
		"after the end":            {afterSeq: 10, limit: 3, want: nil},
		"inside the acked range":   {afterSeq: 2, limit: 2, want: []uint64{4, 5}},
		"max uint64":               {afterSeq: math.MaxUint64, limit: 0, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			entries, err := s.Pending(tc.afterSeq, tc.limit)
			require.NoError(t, err)
			require.Equal(t, tc.want, seqsOf(entries))
		})
	}
}

func TestAck(t *testing.T) {
	tests := map[string]struct {
		acks        []uint64
		wantRemoved []int
		wantPending []uint64
	}{
		"prefix":                  {acks: []uint64{3}, wantRemoved: []int{3}, wantPending: []uint64{4, 5}},
		"repeated ack is a no-op": {acks: []uint64{3, 3, 3}, wantRemoved: []int{3, 0, 0}, wantPending: []uint64{4, 5}},
		"older ack is a no-op":    {acks: []uint64{4, 2}, wantRemoved: []int{4, 0}, wantPending: []uint64{5}},
		"zero acks nothing":       {acks: []uint64{0}, wantRemoved: []int{0}, wantPending: []uint64{1, 2, 3, 4, 5}},
		"incremental":             {acks: []uint64{1, 2, 4}, wantRemoved: []int{1, 1, 2}, wantPending: []uint64{5}},
		"everything":              {acks: []uint64{5, 5}, wantRemoved: []int{5, 0}, wantPending: nil},
		"beyond the end":          {acks: []uint64{math.MaxUint64}, wantRemoved: []int{5}, wantPending: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openTestStore(t, Options{})
			enqueueN(t, s, 5)
			for i, upTo := range tc.acks {
				removed, err := s.Ack(upTo)
				require.NoError(t, err)
				require.Equal(t, tc.wantRemoved[i], removed, "ack %d up to %d", i, upTo)
			}
			entries, err := s.Pending(0, 0)
			require.NoError(t, err)
			require.Equal(t, tc.wantPending, seqsOf(entries))
			n, err := s.OutboxLen()
			require.NoError(t, err)
			require.Equal(t, len(tc.wantPending), n)
		})
	}
}

func TestSeqMonotonicAcrossReopen(t *testing.T) {
	s := openTestStore(t, Options{})
	path := s.Path()
	require.Equal(t, []uint64{1, 2, 3}, enqueueN(t, s, 3))
	// Acking everything empties the bucket; the numbers must still not come back.
	removed, err := s.Ack(3)
	require.NoError(t, err)
	require.Equal(t, 3, removed)
	require.NoError(t, s.Close())

	s = openTestStoreAt(t, path, Options{})
	last, err := s.LastSeq()
	require.NoError(t, err)
	require.Equal(t, uint64(3), last)
	require.Equal(t, []uint64{4, 5}, enqueueN(t, s, 2))
	require.NoError(t, s.Close())

	s = openTestStoreAt(t, path, Options{})
	entries, err := s.Pending(0, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{4, 5}, seqsOf(entries))
	require.Equal(t, []uint64{6}, enqueueN(t, s, 1))
}

func TestMaxOutbox(t *testing.T) {
	s := openTestStore(t, Options{MaxOutbox: 3})
	enqueueN(t, s, 3)

	_, err := s.Enqueue([]byte("overflow"))
	require.ErrorIs(t, err, ErrOutboxFull)
	require.ErrorContains(t, err, "3 reports pending")
	// The failed Enqueue consumed no sequence number.
	last, err := s.LastSeq()
	require.NoError(t, err)
	require.Equal(t, uint64(3), last)

	_, err = s.Ack(1)
	require.NoError(t, err)
	seq, err := s.Enqueue([]byte("fits again"))
	require.NoError(t, err)
	require.Equal(t, uint64(4), seq)
	_, err = s.Enqueue([]byte("overflow again"))
	require.ErrorIs(t, err, ErrOutboxFull)

	n, err := s.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, 3, n)
}

func TestMaxOutboxDefault(t *testing.T) {
	s := openTestStore(t, Options{MaxOutbox: -5})
	require.Equal(t, DefaultMaxOutbox, s.maxOutbox)
}

// Many goroutines enqueue at once: every call gets its own number, the numbers are gap-free,
// and Pending returns the entries in number order with the payload each caller sent.
func TestConcurrentEnqueue(t *testing.T) {
	const (
		writers   = 12
		perWriter = 25
	)
	s := openTestStore(t, Options{})
	var (
		mu      sync.Mutex
		sent    = map[uint64][]byte{}
		wg      sync.WaitGroup
		errs    = make(chan error, writers)
		ordered = make([][]uint64, writers) // per writer, in call order
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				payload := []byte(fmt.Sprintf("writer %d report %d", w, i))
				seq, err := s.Enqueue(payload)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if _, dup := sent[seq]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("seq %d handed out twice", seq)
					return
				}
				sent[seq] = payload
				ordered[w] = append(ordered[w], seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, sent, writers*perWriter)

	// Each writer's calls are sequential, so its numbers must increase.
	for w, seqs := range ordered {
		require.True(t, sort.SliceIsSorted(seqs, func(i, j int) bool { return seqs[i] < seqs[j] }), "writer %d got %v", w, seqs)
	}

	entries, err := s.Pending(0, 0)
	require.NoError(t, err)
	require.Len(t, entries, writers*perWriter)
	for i, e := range entries {
		require.Equal(t, uint64(i+1), e.Seq, "Pending is not gap-free and in order")
		require.Equal(t, sent[e.Seq], e.Payload, "seq %d", e.Seq)
	}
	n, err := s.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, writers*perWriter, n)
}

// Concurrent Ack and Enqueue must keep the pending count exact.
func TestConcurrentAckAndEnqueue(t *testing.T) {
	s := openTestStore(t, Options{})
	enqueueN(t, s, 50)
	var wg sync.WaitGroup
	wg.Add(2)
	var enqueueErr, ackErr error
	go func() {
		defer wg.Done()
		for i := 0; i < 50 && enqueueErr == nil; i++ {
			_, enqueueErr = s.Enqueue([]byte("more"))
		}
	}()
	go func() {
		defer wg.Done()
		for upTo := uint64(5); upTo <= 50 && ackErr == nil; upTo += 5 {
			_, ackErr = s.Ack(upTo)
		}
	}()
	wg.Wait()
	require.NoError(t, enqueueErr)
	require.NoError(t, ackErr)

	entries, err := s.Pending(0, 0)
	require.NoError(t, err)
	require.Equal(t, 50, len(entries))
	require.Equal(t, uint64(51), entries[0].Seq)
	n, err := s.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, 50, n)
}
