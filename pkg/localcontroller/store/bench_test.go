package store

import (
	"bytes"
	"path/filepath"
	"testing"
)

// BenchmarkEnqueue measures one durable Enqueue: a bbolt commit with its fsync, so the number
// mostly reflects the disk. The payload is the size of a typical stage report.
func BenchmarkEnqueue(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "lc.db"), Options{MaxOutbox: b.N + 1})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}()
	payload := bytes.Repeat([]byte("x"), 512)
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
	s, err := Open(filepath.Join(b.TempDir(), "lc.db"), Options{MaxOutbox: b.N + 1})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}()
	payload := bytes.Repeat([]byte("x"), 512)
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
