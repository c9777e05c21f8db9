package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The tally counts an accepted report GM never recorded as lost, any report recorded twice as
// duplicated, a refused one GM recorded as a refusal that did not hold, and a report without an
// answer as neither.
func TestTallyCountsLostDuplicatedAndRefusedReports(t *testing.T) {
	outcomes := map[string]string{
		"a": "ok", "b": "ok", "c": "ok", "d": "enospc", "e": "refused-503", "f": "error", "g": "error", "h": "enospc",
	}
	arrivals := map[string]int{"a": 1, "c": 2, "e": 1, "f": 1, "x": 1}
	got := tally(outcomes, arrivals)
	got.examples = nil
	require.Equal(t, reportTally{sent: 8, accepted: 3, enospc: 2, refused: 1, noAnswer: 2,
		missing: 1, duplicated: 1, refusedArrived: 1}, got)
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
