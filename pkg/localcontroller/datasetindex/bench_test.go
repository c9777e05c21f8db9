package datasetindex

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkCounterAppend measures one Update after an append, the dataset manager's steady
// state: the cost must follow the appended bytes, not the file size.
func BenchmarkCounterAppend(b *testing.B) {
	for _, bench := range []struct {
		name  string
		batch int // lines appended before each Update
	}{
		{name: "1-line", batch: 1},
		{name: "1000-lines", batch: 1000},
	} {
		b.Run(bench.name, func(b *testing.B) {
			batch := []byte(lines("train/images", bench.batch))
			// The file starts large so that re-reading it would show.
			initial := []byte(lines("base/images", 200000))
			path := filepath.Join(tempDir(b), "index.txt")
			var file *os.File
			var counter *Counter
			reset := func() {
				require.NoError(b, os.WriteFile(path, initial, 0o644))
				var err error
				file, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
				require.NoError(b, err)
				counter = NewCounter(FormatTxt, Options{})
				_, _, err = counter.Update(path)
				require.NoError(b, err)
			}
			reset()
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if i%2000 == 1999 {
					// Keep the file from growing without bound over a long run.
					b.StopTimer()
					require.NoError(b, file.Close())
					reset()
					b.StartTimer()
				}
				if _, err := file.Write(batch); err != nil {
					b.Fatal(err)
				}
				if _, _, err := counter.Update(path); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			require.NoError(b, file.Close())
		})
	}
}

// BenchmarkCounterFullScan measures a first count (or recount) of a large index file.
func BenchmarkCounterFullScan(b *testing.B) {
	content := []byte(lines("train/images", 200000))
	path := filepath.Join(tempDir(b), "index.txt")
	require.NoError(b, os.WriteFile(path, content, 0o644))
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := NewCounter(FormatTxt, Options{}).Update(path); err != nil {
			b.Fatal(err)
		}
	}
}
