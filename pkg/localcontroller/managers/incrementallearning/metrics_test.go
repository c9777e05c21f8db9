package incrementallearning

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// The worker API decodes reports with UseNumber, so metrics arrive as json.Number; upstream's
// library also sends numeric strings.
func TestDecodeMetricsAsTheWorkerAPIDeliversThem(t *testing.T) {
	decoder := json.NewDecoder(bytes.NewReader([]byte(`{"accuracy":[0.75],"loss":0.5,"f1":["0.25"],"n":3}`)))
	decoder.UseNumber()
	var raw any
	require.NoError(t, decoder.Decode(&raw))
	metrics, err := decodeMetrics(raw)
	require.NoError(t, err)
	require.Equal(t, map[string][]float64{"accuracy": {0.75}, "loss": {0.5}, "f1": {0.25}, "n": {3}}, metrics)

	for body, want := range map[string]string{
		`{"accuracy":[true]}`:  "metric accuracy[0]: bool is not a number",
		`{"accuracy":"high"}`:  `metric accuracy is not a number or a list of numbers: "high" is not a number`,
		`{"accuracy":{"a":1}}`: "metric accuracy is not a number or a list of numbers",
		`[1,2]`:                "metrics is []interface {}, not an object",
	} {
		decoder := json.NewDecoder(bytes.NewReader([]byte(body)))
		decoder.UseNumber()
		var raw any
		require.NoError(t, decoder.Decode(&raw))
		_, err := decodeMetrics(raw)
		require.ErrorContains(t, err, want, body)
	}
}
