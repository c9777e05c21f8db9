package lifelong

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAUROC(t *testing.T) {
	require.Equal(t, 1.0, AUROC([]float64{3, 4}, []float64{1, 2}))
	require.Equal(t, 0.0, AUROC([]float64{1, 2}, []float64{3, 4}))
	require.Equal(t, 0.5, AUROC([]float64{1, 1}, []float64{1, 1}), "ties count half")
	// Pairs: 0.8>0.5, 0.8>0.1, 0.4<0.5, 0.4>0.1.
	require.Equal(t, 0.75, AUROC([]float64{0.8, 0.4}, []float64{0.5, 0.1}))
	// One tie among four pairs: 0.5 vs 0.5 counts half.
	require.Equal(t, (1+1+0.5+1)/4.0, AUROC([]float64{0.9, 0.5}, []float64{0.5, 0.1}))
	require.True(t, math.IsNaN(AUROC(nil, []float64{1})))
}

func TestDetectAt(t *testing.T) {
	d := DetectAt([]float64{2, 3, 0.5}, []float64{0.1, 1.5, 0.2, 0.3}, 1)
	require.Equal(t, Detection{TruePositives: 2, FalseNegatives: 1, FalsePositives: 1, TrueNegatives: 3}, d)
	require.InDelta(t, 2.0/3, d.Precision(), 1e-12)
	require.InDelta(t, 2.0/3, d.Recall(), 1e-12)
	require.True(t, math.IsNaN(DetectAt(nil, []float64{0}, 1).Precision()))
}

func TestAccuracyMatrix(t *testing.T) {
	m := AccuracyMatrix{
		R: [][]float64{
			{0.9, 0.3, 0.2},
			{0.8, 0.95, 0.4},
			{0.7, 0.9, 0.97},
		},
		Reference: []float64{0.1, 0.1, 0.1},
	}
	// ((0.7-0.9) + (0.9-0.95)) / 2
	require.InDelta(t, -0.125, m.BackwardTransfer(), 1e-12)
	// ((0.3-0.1) + (0.4-0.1)) / 2
	require.InDelta(t, 0.25, m.ForwardTransfer(), 1e-12)
	forgetting := m.Forgetting()
	require.Len(t, forgetting, 2)
	require.InDelta(t, 0.2, forgetting[0], 1e-12)
	require.InDelta(t, 0.05, forgetting[1], 1e-12)
	require.True(t, math.IsNaN(AccuracyMatrix{R: [][]float64{{1}}}.BackwardTransfer()))
}
