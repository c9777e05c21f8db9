package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The tally counts an accepted report GM never recorded as lost, any report recorded twice as
// duplicated unless the GM that first recorded it died before writing its mark, a refused one
// GM recorded as a refusal that did not hold, and a report without an answer as neither.
func TestTallyCountsLostDuplicatedAndRefusedReports(t *testing.T) {
	outcomes := map[string]string{
		"a": "ok", "b": "ok", "c": "ok", "d": "enospc", "e": "refused-503", "f": "error", "g": "error", "h": "enospc",
		"r": "ok", "s": "ok", "u": "ok", "v": "ok",
	}
	g := gmRecords{arrivals: map[string][]arrival{}, marked: map[string]map[string]uint64{}}
	for _, line := range []string{
		`I1205 18:00:00.000001     100 marks.go:1] "Persisted a report mark" node="n1" store="s" seq=4`,
		`I1205 18:00:00.000002     100 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=1 object="chaos/chaos-reports-1" values={"reportId":"a"}`,
		// c: recorded twice by one process.
		`I1205 18:00:00.000003     100 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=2 object="chaos/chaos-reports-1" values={"reportId":"c"}`,
		`I1205 18:00:00.000004     100 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=2 object="chaos/chaos-reports-1" values={"reportId":"c"}`,
		`I1205 18:00:00.000005     100 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=3 object="chaos/chaos-reports-1" values={"reportId":"e"}`,
		`I1205 18:00:00.000006     100 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=4 object="chaos/chaos-reports-1" values={"reportId":"f"}`,
		// s: recorded by 100 after it wrote the mark covering it, and again by 200.
		`I1205 18:00:00.000007     100 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=4 object="chaos/chaos-reports-1" values={"reportId":"s"}`,
		// r: recorded by 100, which died before marking 5: redelivered to 200.
		`I1205 18:00:00.000008     100 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=5 object="chaos/chaos-reports-1" values={"reportId":"r"}`,
		// u: another node's mark does not cover it.
		`I1205 18:00:00.000009     100 marks.go:1] "Persisted a report mark" node="n2" store="s" seq=9`,
		`I1205 18:00:00.000010     100 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=6 object="chaos/chaos-reports-1" values={"reportId":"u"}`,
		`I1205 18:00:01.000000     200 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=4 object="chaos/chaos-reports-1" values={"reportId":"s"}`,
		`I1205 18:00:01.000001     200 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=5 object="chaos/chaos-reports-1" values={"reportId":"r"}`,
		`I1205 18:00:01.000002     200 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=6 object="chaos/chaos-reports-1" values={"reportId":"u"}`,
		`I1205 18:00:01.000003     200 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=7 object="chaos/chaos-reports-1" values={"reportId":"x"}`,
		`I1205 18:00:01.000004     200 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=8 object="other/svc" values={"reportId":"b"}`,
		// v: the other GM log, read after this one, recorded it first (process 300 died before
		// marking it): in time order, a redelivery.
		`I1205 18:00:02.000000     400 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=9 object="chaos/chaos-reports-1" values={"reportId":"v"}`,
		`I1205 17:59:00.000000     300 workerreports.go:1] "Recorded a worker report" node="n1" reportSeq=9 object="chaos/chaos-reports-1" values={"reportId":"v"}`,
		`I1205 18:00:03.000000     300 marks.go:1] "Persisted a report mark" node="n1" store="s" seq=8`,
		`I1205 18:00:02.500000     400 marks.go:1] "Persisted a report mark" node="n1" store="s" seq=9`,
	} {
		g.read(line)
	}
	require.Equal(t, map[string]uint64{"n1": 4, "n2": 9}, g.marked["100"])
	got := tally(outcomes, g)
	got.examples, got.missingIDs = nil, nil
	require.Equal(t, reportTally{sent: 12, accepted: 7, enospc: 2, refused: 1, noAnswer: 2,
		missing: 1, duplicated: 2, redelivered: 3, refusedArrived: 1}, got)
}

func TestWatcherCountsLiveChildrenPerWorker(t *testing.T) {
	labels := func(name, workerType string) map[string]string {
		return map[string]string{"incrementallearningjob.sedna.io/name": name, "incrementallearningjob.sedna.io/uid": "u",
			"incrementallearningjob.sedna.io/worker-type": workerType}
	}
	require.Equal(t, "incrementallearningjob/il/train", workerOf(labels("il", "train")))
	require.Empty(t, workerOf(map[string]string{"app": "x"}))
	// A federated learning job's trainers are one worker each.
	fl := func(index string) map[string]string {
		return map[string]string{"federatedlearningjob.sedna.io/name": "fl", "federatedlearningjob.sedna.io/worker-type": "train",
			"federatedlearningjob.sedna.io/training-index": index}
	}
	require.Equal(t, "federatedlearningjob/fl/train-0", workerOf(fl("0")))
	require.NotEqual(t, workerOf(fl("0")), workerOf(fl("1")))

	sets := map[string]map[string]bool{}
	most, worst := 0, ""
	mark(sets, workerOf(labels("il", "train")), "train-1", true, &most, &worst)
	mark(sets, workerOf(labels("il", "eval")), "eval-1", true, &most, &worst)
	mark(sets, workerOf(labels("il", "train")), "train-1", false, &most, &worst)
	mark(sets, workerOf(labels("il", "train")), "train-2", true, &most, &worst)
	require.Equal(t, 1, most, "one train pod after another is not a duplicate")
	mark(sets, workerOf(labels("il", "eval")), "eval-2", true, &most, &worst)
	require.Equal(t, 2, most)
	require.Equal(t, "incrementallearningjob/il/eval", worst)
	mark(sets, "", "other", true, &most, &worst)
	require.Equal(t, 2, most)
}
