package mot

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

func box(x int) multiedge.Box { return multiedge.Box{X: x, Y: 10, W: 10, H: 20} }

// shifted overlaps box(x) with IoU 20/30 ≈ 0.67... for a 5-pixel shift: (5*20)/(15*20) = 0.33; a
// 2-pixel shift gives 8/12 = 0.67.
func shifted(x, by int) multiedge.Box { return box(x + by) }

func TestEvaluate(t *testing.T) {
	for name, tc := range map[string]struct {
		frames []Frame
		want   Result
	}{
		"perfect tracking": {
			frames: []Frame{
				{Camera: "a", Time: 0, Truth: []Object{{1, box(0)}, {2, box(50)}}, Hyps: []Object{{7, box(0)}, {8, box(50)}}},
				{Camera: "a", Time: 1, Truth: []Object{{1, box(2)}, {2, box(52)}}, Hyps: []Object{{7, box(2)}, {8, box(52)}}},
			},
			want: Result{Truths: 4, Hyps: 4, Matches: 4, MOTA: 1, MOTP: 1, IDTP: 4, IDF1: 1, IDP: 1, IDR: 1},
		},
		"one switch halfway": {
			frames: []Frame{
				{Time: 0, Truth: []Object{{1, box(0)}}, Hyps: []Object{{1, box(0)}}},
				{Time: 1, Truth: []Object{{1, box(0)}}, Hyps: []Object{{1, box(0)}}},
				{Time: 2, Truth: []Object{{1, box(0)}}, Hyps: []Object{{2, box(0)}}},
				{Time: 3, Truth: []Object{{1, box(0)}}, Hyps: []Object{{2, box(0)}}},
			},
			// MOTA = 1 - 1/4; the best identity pairing covers 2 of 4 frames: IDF1 = 4/8.
			want: Result{Truths: 4, Hyps: 4, Matches: 4, IDSW: 1, MOTA: 0.75, MOTP: 1, IDTP: 2, IDFP: 2, IDFN: 2, IDF1: 0.5, IDP: 0.5, IDR: 0.5},
		},
		"a miss and a false alarm": {
			frames: []Frame{
				{Time: 0, Truth: []Object{{1, box(0)}}},
				{Time: 1, Truth: []Object{{1, box(0)}}, Hyps: []Object{{5, box(80)}}},
			},
			// Two truths, two misses, one false positive: MOTA = 1 - 3/2.
			want: Result{Truths: 2, Hyps: 1, FN: 2, FP: 1, MOTA: -0.5, IDFP: 1, IDFN: 2},
		},
		"a kept correspondence beats a better overlap": {
			frames: []Frame{
				{Time: 0, Truth: []Object{{1, box(0)}}, Hyps: []Object{{1, box(0)}}},
				// Hypothesis 1 still overlaps (IoU 0.67), hypothesis 2 overlaps perfectly: CLEAR-MOT
				// keeps 1, so no switch, and 2 is a false positive.
				{Time: 1, Truth: []Object{{1, box(0)}}, Hyps: []Object{{2, box(0)}, {1, shifted(0, 2)}}},
			},
			want: Result{Truths: 2, Hyps: 3, Matches: 2, FP: 1, MOTA: 0.5, MOTP: (1 + 8.0/12) / 2, IDTP: 2, IDFP: 1, IDF1: 0.8, IDP: 2.0 / 3, IDR: 1},
		},
		"below the threshold is no match": {
			frames: []Frame{{Time: 0, Truth: []Object{{1, box(0)}}, Hyps: []Object{{1, shifted(0, 5)}}}},
			want:   Result{Truths: 1, Hyps: 1, FN: 1, FP: 1, MOTA: -1, IDFP: 1, IDFN: 1},
		},
		"a new identity in the next camera is a switch": {
			frames: []Frame{
				{Camera: "b", Time: 1, Truth: []Object{{1, box(0)}}, Hyps: []Object{{20, box(0)}}},
				{Camera: "a", Time: 0, Truth: []Object{{1, box(0)}}, Hyps: []Object{{10, box(0)}}},
			},
			want: Result{Truths: 2, Hyps: 2, Matches: 2, IDSW: 1, MOTA: 0.5, MOTP: 1, IDTP: 1, IDFP: 1, IDFN: 1, IDF1: 0.5, IDP: 0.5, IDR: 0.5},
		},
		"the same identity across cameras is not": {
			frames: []Frame{
				{Camera: "a", Time: 0, Truth: []Object{{1, box(0)}}, Hyps: []Object{{10, box(0)}}},
				{Camera: "b", Time: 5, Truth: []Object{{1, box(0)}}, Hyps: []Object{{10, box(0)}}},
			},
			want: Result{Truths: 2, Hyps: 2, Matches: 2, MOTA: 1, MOTP: 1, IDTP: 2, IDF1: 1, IDP: 1, IDR: 1},
		},
		"a returning identity after a gap counts one switch each way": {
			frames: []Frame{
				{Time: 0, Truth: []Object{{1, box(0)}}, Hyps: []Object{{1, box(0)}}},
				{Time: 1, Truth: []Object{{1, box(0)}}, Hyps: []Object{{2, box(0)}}},
				{Time: 2, Truth: []Object{{1, box(0)}}},
				{Time: 3, Truth: []Object{{1, box(0)}}, Hyps: []Object{{1, box(0)}}},
			},
			want: Result{Truths: 4, Hyps: 3, Matches: 3, FN: 1, IDSW: 2, MOTA: 1 - 3.0/4, MOTP: 1, IDTP: 2, IDFP: 1, IDFN: 2, IDF1: 4.0 / 7, IDP: 2.0 / 3, IDR: 0.5},
		},
		"hungarian, not greedy, for new matches": {
			// Greedy by best IoU would pair truth 1 with hypothesis 100 (IoU 0.82) and leave truth 2
			// without a partner above the threshold; the optimal assignment matches both.
			frames: []Frame{{Time: 0,
				Truth: []Object{{1, box(0)}, {2, box(3)}},
				Hyps:  []Object{{100, box(1)}, {200, box(-2)}}}},
			want: Result{Truths: 2, Hyps: 2, Matches: 2, MOTA: 1, MOTP: (8.0/12 + 8.0/12) / 2, IDTP: 2, IDF1: 1, IDP: 1, IDR: 1},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := Evaluate(tc.frames, 0.5)
			require.InDelta(t, tc.want.MOTA, got.MOTA, 1e-9, "MOTA")
			require.InDelta(t, tc.want.MOTP, got.MOTP, 1e-9, "MOTP")
			require.InDelta(t, tc.want.IDF1, got.IDF1, 1e-9, "IDF1")
			require.InDelta(t, tc.want.IDP, got.IDP, 1e-9, "IDP")
			require.InDelta(t, tc.want.IDR, got.IDR, 1e-9, "IDR")
			tc.want.MOTA, tc.want.MOTP, tc.want.IDF1, tc.want.IDP, tc.want.IDR = got.MOTA, got.MOTP, got.IDF1, got.IDP, got.IDR
			require.Len(t, got.Switches, got.IDSW)
			got.Switches = nil
			require.Equal(t, tc.want, got)
		})
	}
}

func TestPercentile(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	require.Equal(t, 5.0, Percentile(values, 50))
	require.Equal(t, 10.0, Percentile(values, 95))
	require.Equal(t, 1.0, Percentile(values, 0))
	require.Equal(t, 0.0, Percentile(nil, 50))
}
