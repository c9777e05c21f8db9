package incrementallearning

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
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

func TestPodRound(t *testing.T) {
	for worker, want := range map[string]int32{
		"helmet-il-train-3": 3, "helmet-il-train-12-2": 12, "helmet-il-eval-1": 0, "train-worker-abcde": 0,
		"helmet-il-train-x": 0, "helmet-il-train-0": 0, "other-train-3": 0,
	} {
		round, ok := podRound("helmet-il", sednav1.StageTrain, worker)
		require.Equal(t, want != 0, ok, worker)
		require.Equal(t, want, round, worker)
	}
}
