package incrementallearning

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecordKeepsItsStoredFormat: a record as earlier versions saved it (pending and lastReport
// at the top level) decodes, and encodes back to the same fields.
func TestRecordKeepsItsStoredFormat(t *testing.T) {
	saved := `{"state":{"stage":"Eval","stageState":"Running","round":3},"current":{"trainData":"/d/t.txt","furthestStage":"Eval"},` +
		`"lastTrained":{"format":"pb","url":"/m/3.pb"},"pending":[{"phase":"Eval"}],"lastReport":{"phase":"Eval","status":"Running"}}`
	var rec record
	require.NoError(t, json.Unmarshal([]byte(saved), &rec))
	require.Equal(t, int32(3), rec.State.Round)
	require.Len(t, rec.Pending, 1)
	require.JSONEq(t, `{"phase":"Eval"}`, string(rec.Pending[0]))
	require.JSONEq(t, `{"phase":"Eval","status":"Running"}`, string(rec.LastReport))
	again, err := json.Marshal(rec)
	require.NoError(t, err)
	require.JSONEq(t, saved, string(again))
}
