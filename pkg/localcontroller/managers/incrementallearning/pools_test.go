package incrementallearning

import (
	"encoding/json"
	"testing"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/stretchr/testify/require"
)

// TestTheRecordStaysSmallWithALargePool: the samples waiting for the next round live apart from
// the job record, so the record a worker report saves does not grow with them.
func TestTheRecordStaysSmallWithALargePool(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	job := newJob(false)
	job.Spec.TrainSpec.Trigger.Condition.Threshold = 1e9 // the pool keeps growing
	l.setup(job)
	n.appendSamples(t, 0, 5000)
	l.run()
	require.Eventually(t, func() bool {
		raw, found, err := l.st.GetBlob(PoolNamespace, testNamespace+"/"+testJob)
		return err == nil && found && len(raw) > 0 && func() bool {
			var pools samplePools
			return json.Unmarshal(raw, &pools) == nil && pools.SeenSamples == 5000
		}()
	}, waitFor, testPeriodPoll)
	require.Len(t, l.savedPools().TrainPool, 4000)

	require.NoError(t, l.post(managers.WorkerMessage{Kind: "inference", Status: "running"}))
	raw, found, err := l.st.GetState(StateNamespace, testNamespace+"/"+testJob)
	require.NoError(t, err)
	require.True(t, found)
	require.Less(t, len(raw), 4096, "the record holds no samples: %s", raw)
}

// TestARecordWithItsPoolsInsideIsMovedApart: a record saved by an LC from before the split keeps
// its samples; they are moved under their own key at once.
func TestARecordWithItsPoolsInsideIsMovedApart(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	n.appendSamples(t, 0, 3)
	legacy := `{"state":{"stage":"Train","stageState":"Waiting","round":2},"datasetURL":"` + indexPath +
		`","seenSamples":3,"trainPool":["a","b"],"evalVersions":[["c"]],"current":{}}`
	require.NoError(t, l.st.PutState(StateNamespace, testNamespace+"/"+testJob, []byte(legacy)))
	job := newJob(false)
	job.Spec.TrainSpec.Trigger.Condition.Threshold = 1e9
	l.setup(job)

	pools := l.savedPools()
	require.Equal(t, samplePools{DatasetURL: indexPath, SeenSamples: 3, TrainPool: []string{"a", "b"}, EvalVersions: [][]string{{"c"}}}, pools)
	raw, _, err := l.st.GetState(StateNamespace, testNamespace+"/"+testJob)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "trainPool")
	require.Equal(t, int32(2), l.savedRecord().State.Round)

	// The samples already seen are not taken again.
	l.run()
	l.waitPasses(2)
	require.Equal(t, []string{"a", "b"}, l.savedPools().TrainPool)
}
