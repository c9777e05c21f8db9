package rounds

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPoolsTakeSplitsOnlyNewSamples(t *testing.T) {
	var p Pools
	p, taken := p.Take("/data/index.csv", []string{"a", "b", "c", "d"}, 0.5)
	require.Equal(t, Taken{Fresh: 4, Train: 2}, taken)
	require.Equal(t, []string{"a", "b"}, p.TrainPool)
	require.Equal(t, [][]string{{"c", "d"}}, p.EvalVersions)

	p, taken = p.Take("/data/index.csv", []string{"a", "b", "c", "d", "e", "f", "g"}, 0.5)
	require.Equal(t, Taken{Fresh: 3, Train: 1}, taken, "int(0.5*3) of the 3 new samples train")
	require.Equal(t, []string{"a", "b", "e"}, p.TrainPool)
	require.Equal(t, []string{"c", "d", "f", "g"}, p.EvalSamples())

	shrunk, taken := p.Take("/data/index.csv", []string{"x"}, 0.5)
	require.True(t, taken.Shrank)
	require.Equal(t, 1, shrunk.SeenSamples)
	require.Equal(t, p.TrainPool, shrunk.TrainPool, "a shrunk index takes nothing")

	moved, taken := p.Take("/data/other.csv", []string{"x"}, 1)
	require.Equal(t, Taken{Fresh: 1, Train: 1}, taken, "another index starts over")
	require.Equal(t, []string{"a", "b", "e", "x"}, moved.TrainPool)
}

func TestPoolsKeepAtMostMaxEvalVersions(t *testing.T) {
	var p Pools
	var samples []string
	for i := range MaxEvalVersions + 2 {
		samples = append(samples, string(rune('a'+i)))
		p, _ = p.Take("i", samples, 0)
	}
	require.Len(t, p.EvalVersions, MaxEvalVersions)
	require.Equal(t, []string{"c"}, p.EvalVersions[0])
}

func TestSplitSamplesDropsCSVHeaderAndUnterminatedLine(t *testing.T) {
	require.Equal(t, []string{"a.png,1,0"}, SplitSamples([]byte("ref,label,rotation\na.png,1,0\n\nb.png,2"), "csv"))
	require.Equal(t, []string{"x", "y"}, SplitSamples([]byte("x\r\ny\n"), "txt"))
}
