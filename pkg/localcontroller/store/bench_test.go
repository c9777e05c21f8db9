package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
)

// openBenchStore opens a store whose bounds leave room for b.N reports of payloadSize bytes.
func openBenchStore(b *testing.B, payloadSize int) *Store {
	b.Helper()
	budget := max(MinOutboxBytes, int64(b.N+1)*int64(payloadSize+128))
	s, err := Open(filepath.Join(b.TempDir(), "lc.db"), Options{MaxOutbox: 4 * (b.N + 8), MaxOutboxBytes: budget})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	})
	return s
}

// BenchmarkEnqueue measures one durable Enqueue: a bbolt commit with its fsync, so the number
// mostly reflects the disk. The payload is the size of a typical stage report.
func BenchmarkEnqueue(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 512)
	s := openBenchStore(b, len(payload))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Enqueue(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueParallel shows throughput when several managers report at once. bbolt
// serialises write transactions, so this is bounded by commits per second, not by cores.
func BenchmarkEnqueueParallel(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 512)
	s := openBenchStore(b, len(payload))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Enqueue(payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEnqueueCoalesced measures a worker-metrics report that replaces the queued report of
// its stream (8 workers reporting in turn): the delete of the old entry and the stream index
// update ride in the same commit.
func BenchmarkEnqueueCoalesced(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 512)
	s := openBenchStore(b, len(payload))
	streams := make([]EnqueueOptions, 8)
	for i := range streams {
		streams[i] = EnqueueOptions{Class: ClassWorkerMetrics, Stream: fmt.Sprintf("jointinferenceservice/ns/ji/edge-%d/inference", i)}
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.EnqueueWith(payload, streams[i%len(streams)]); err != nil {
			b.Fatal(err)
		}
	}
}
