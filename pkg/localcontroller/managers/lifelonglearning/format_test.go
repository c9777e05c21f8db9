package lifelonglearning

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecordKeepsItsStoredFormat: a record as earlier versions saved it (pending and lastReport
// at the top level) decodes, and encodes back to the same fields.
func TestRecordKeepsItsStoredFormat(t *testing.T) {
	saved := `{"state":{"stage":"Train","stageState":"Ready","round":2},"current":{"trainData":"/d/t.csv","furthestStage":"Train"},` +
		`"header":"ref,label","lastIndex":{"format":"pkl","url":"/kb/index.pkl"},"pending":[{"phase":"Train"}],"lastReport":{"phase":"Train","status":"Ready"}}`
	var rec record
	require.NoError(t, json.Unmarshal([]byte(saved), &rec))
	require.Equal(t, int32(2), rec.State.Round)
	require.Len(t, rec.Pending, 1)
	require.JSONEq(t, `{"phase":"Train","status":"Ready"}`, string(rec.LastReport))
	again, err := json.Marshal(rec)
	require.NoError(t, err)
	require.JSONEq(t, saved, string(again))
}
