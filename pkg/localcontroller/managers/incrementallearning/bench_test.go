package incrementallearning

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
)

// BenchmarkWorkerReportPersistence measures what one worker report costs the LC while the job
// holds a large train pool: the report is saved with the job's record (a bbolt commit and fsync)
// before it is handed on. The pool is taken from a dataset index of poolMiB MiB.
func BenchmarkWorkerReportPersistence(b *testing.B) {
	for _, poolMiB := range []int{1, 16} {
		b.Run(fmt.Sprintf("pool=%dMiB", poolMiB), func(b *testing.B) {
			n := node{rootfs: b.TempDir(), storePath: filepath.Join(b.TempDir(), "lc.db")}
			writeHostFile(b, n, "/data/models/initial/model.pb", "initial")
			writeHostFile(b, n, "/data/models/deploy/model.pb", "deployed-0")
			line := "images/" + strings.Repeat("x", 40) + ".jpg 1\n"
			writeHostFile(b, n, indexPath, strings.Repeat(line, poolMiB<<20/len(line)))
			l := startLC(b, n)
			job := newJob(false)
			job.Spec.Dataset.TrainProb = 1
			job.Spec.TrainSpec.Trigger.Condition.Threshold = 1e12 // never fires
			l.setup(job)
			j, _ := l.m.jobs.Get(l.jobKey())
			j.pass(context.Background())
			msg := managers.WorkerMessage{Kind: "inference", Status: "running", Name: "infer-worker", Namespace: testNamespace, OwnerName: testJob, OwnerKind: Kind,
				Results: []map[string]any{{"format": "pb", "url": "/data/models/deploy/model.pb"}}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := l.m.HandleWorkerMessage(context.Background(), msg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			raw, _, err := l.st.GetState(StateNamespace, testNamespace+"/"+testJob)
			require.NoError(b, err)
			b.ReportMetric(float64(len(raw)), "record-bytes")
		})
	}
}

func writeHostFile(b *testing.B, n node, hostPath, content string) {
	b.Helper()
	full := filepath.Join(n.rootfs, hostPath)
	require.NoError(b, os.MkdirAll(filepath.Dir(full), 0o755))
	require.NoError(b, os.WriteFile(full, []byte(content), 0o644))
}
