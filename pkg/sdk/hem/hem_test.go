package hem

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func boxes(scores ...float64) Inference {
	result := Inference{}
	for _, score := range scores {
		result.Boxes = append(result.Boxes, Box{X2: 10, Y2: 10, Score: score})
	}
	return result
}

func TestBuiltins(t *testing.T) {
	tests := map[string]struct {
		name    string
		params  map[string]string
		input   Inference
		want    bool
		wantErr error
	}{
		// IBT: hard when share(score <= threshold_box) >= 1 - threshold_img.
		"IBT half low at defaults is hard (0.5 >= 0.5)": {name: NameIBT, input: boxes(0.5, 0.9), want: true},
		"IBT score just above box threshold is easy":    {name: NameIBT, input: boxes(0.51, 0.9), want: false},
		"IBT one third low is easy":                     {name: NameIBT, input: boxes(0.4, 0.9, 0.9), want: false},
		"IBT two thirds low is hard":                    {name: NameIBT, input: boxes(0.4, 0.3, 0.9), want: true},
		"IBT threshold_img 1 makes any image hard":      {name: NameIBT, params: map[string]string{"threshold_img": "1"}, input: boxes(0.99), want: true},
		"IBT threshold_img 0 needs every box low":       {name: NameIBT, params: map[string]string{"threshold_img": "0"}, input: boxes(0.1, 0.2, 0.6), want: false},
		"IBT threshold_img 0 all low":                   {name: NameIBT, params: map[string]string{"threshold_img": "0"}, input: boxes(0.1, 0.2, 0.5), want: true},
		"IBT box threshold moved":                       {name: NameIBT, params: map[string]string{"threshold_box": "0.95"}, input: boxes(0.9, 0.96), want: true},
		"IBT no boxes is easy":                          {name: NameIBT, input: Inference{}, want: false},
		"IBT score above 1 is invalid":                  {name: NameIBT, input: boxes(0.5, 1.2), wantErr: ErrInvalidInference},
		"IBT negative score is invalid":                 {name: NameIBT, input: boxes(-0.1), wantErr: ErrInvalidInference},

		// CrossEntropy: confidence = 1 + Σ p ln p / ln n; hard when < threshold.
		"CE uniform pair has confidence 0, hard":          {name: NameCrossEntropy, input: Inference{Probabilities: []float64{0.5, 0.5}}, want: true},
		"CE uniform at threshold 0 is easy (0 < 0 false)": {name: NameCrossEntropy, params: map[string]string{"threshold_cross_entropy": "0"}, input: Inference{Probabilities: []float64{0.5, 0.5}}, want: false},
		"CE one-hot has confidence 1, easy":               {name: NameCrossEntropy, input: Inference{Probabilities: []float64{1, 0, 0}}, want: false},
		"CE one-hot at threshold 1 is easy (1 < 1 false)": {name: NameCrossEntropy, params: map[string]string{"threshold_cross_entropy": "1"}, input: Inference{Probabilities: []float64{0, 1}}, want: false},
		"CE 0.9/0.1 confidence 0.531 vs 0.5 easy":         {name: NameCrossEntropy, input: Inference{Probabilities: []float64{0.9, 0.1}}, want: false},
		"CE 0.9/0.1 confidence 0.531 vs 0.54 hard":        {name: NameCrossEntropy, params: map[string]string{"threshold_cross_entropy": "0.54"}, input: Inference{Probabilities: []float64{0.9, 0.1}}, want: true},
		"CE 0.9/0.1 confidence 0.531 vs 0.53 easy":        {name: NameCrossEntropy, params: map[string]string{"threshold_cross_entropy": "0.53"}, input: Inference{Probabilities: []float64{0.9, 0.1}}, want: false},
		"CE empty is easy":                                {name: NameCrossEntropy, input: Inference{}, want: false},
		"CE single class is invalid":                      {name: NameCrossEntropy, input: Inference{Probabilities: []float64{1}}, wantErr: ErrInvalidInference},
		"CE probability above 1 is invalid":               {name: NameCrossEntropy, input: Inference{Probabilities: []float64{1.5, 0}}, wantErr: ErrInvalidInference},

		// Threshold: hard when mean score < threshold.
		"Threshold mean exactly 0.5 is easy": {name: NameThreshold, input: boxes(0.4, 0.6), want: false},
		"Threshold mean 0.495 is hard":       {name: NameThreshold, input: boxes(0.4, 0.59), want: true},
		"Threshold raised":                   {name: NameThreshold, params: map[string]string{"threshold": "0.8"}, input: boxes(0.7, 0.8), want: true},
		"Threshold no boxes is easy":         {name: NameThreshold, input: Inference{}, want: false},
		"Threshold invalid score":            {name: NameThreshold, input: boxes(2), wantErr: ErrInvalidInference},

		"Random ratio 0 never":  {name: NameRandom, params: map[string]string{"random_ratio": "0", "seed": "1"}, want: false},
		"Random ratio 1 always": {name: NameRandom, params: map[string]string{"random_ratio": "1", "seed": "1"}, want: true},
		"CloudOnly always hard": {name: NameCloudOnly, want: true},
		"EdgeOnly never hard":   {name: NameEdgeOnly, input: Inference{Probabilities: []float64{0.5, 0.5}}, want: false},
	}
	registry := NewRegistry()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			miner, err := registry.New(tc.name, tc.params)
			require.NoError(t, err)
			got, err := miner.IsHard(tc.input)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParameterErrors(t *testing.T) {
	tests := map[string]struct {
		name    string
		params  map[string]string
		wantErr string
	}{
		"not a number":      {name: NameIBT, params: map[string]string{"threshold_img": "high"}, wantErr: `parameter threshold_img="high" is not a number`},
		"outside unit":      {name: NameIBT, params: map[string]string{"threshold_box": "1.5"}, wantErr: `parameter threshold_box="1.5" is outside [0,1]`},
		"NaN":               {name: NameThreshold, params: map[string]string{"threshold": "NaN"}, wantErr: `parameter threshold="NaN" is outside [0,1]`},
		"typo":              {name: NameIBT, params: map[string]string{"threshold_image": "0.9"}, wantErr: "unknown parameter threshold_image (known: threshold_box, threshold_img)"},
		"param on constant": {name: NameCloudOnly, params: map[string]string{"x": "1"}, wantErr: "unknown parameter x (this algorithm takes none)"},
		"bad seed":          {name: NameRandom, params: map[string]string{"seed": "abc"}, wantErr: `parameter seed="abc" is not an integer`},
		"bad ratio":         {name: NameRandom, params: map[string]string{"random_ratio": "-0.1"}, wantErr: "random_ratio"},
		"unknown name":      {name: "ibt", wantErr: `unknown hard example mining algorithm "ibt" (known: CloudOnly, CrossEntropy, EdgeOnly, IBT, Random, Threshold)`},
	}
	registry := NewRegistry()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := registry.New(tc.name, tc.params)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestRandomIsSeededAndProportional(t *testing.T) {
	draw := func(seed uint64) []bool {
		miner := NewRandom(0.3, seed)
		out := make([]bool, 10000)
		for i := range out {
			out[i], _ = miner.IsHard(Inference{})
		}
		return out
	}
	first, again, other := draw(42), draw(42), draw(43)
	require.Equal(t, first, again, "the same seed must give the same sequence")
	require.NotEqual(t, first, other)
	hard := 0
	for _, isHard := range first {
		if isHard {
			hard++
		}
	}
	// 10000 Bernoulli(0.3) draws: sd ≈ 46, so ±300 is over 6 sd.
	require.InDelta(t, 3000, hard, 300)
}

type alwaysErr struct{}

func (alwaysErr) IsHard(Inference) (bool, error) { return false, errors.New("boom") }

func TestRegister(t *testing.T) {
	registry := NewRegistry()
	require.NoError(t, registry.Register("Custom", func(map[string]string) (Miner, error) { return alwaysErr{}, nil }))
	miner, err := registry.New("Custom", nil)
	require.NoError(t, err)
	_, err = miner.IsHard(Inference{})
	require.EqualError(t, err, "boom")

	require.ErrorContains(t, registry.Register(NameIBT, func(map[string]string) (Miner, error) { return nil, nil }), `"IBT": the name is taken`)
	require.Error(t, registry.Register("", nil))

	require.NoError(t, registry.Register("Failing", func(map[string]string) (Miner, error) { return nil, errors.New("no model") }))
	_, err = registry.New("Failing", nil)
	require.EqualError(t, err, "configuring hard example mining algorithm Failing: no model")

	// A separate registry is unaffected: there is no global state.
	_, err = NewRegistry().New("Custom", nil)
	require.Error(t, err)
}

func TestBoxFromRow(t *testing.T) {
	box, err := BoxFromRow([]float64{1, 2, 3, 4, 0.7, 5})
	require.NoError(t, err)
	require.Equal(t, Box{X1: 1, Y1: 2, X2: 3, Y2: 4, Score: 0.7, Label: 5}, box)
	box, err = BoxFromRow([]float64{1, 2, 3, 4, 0.7})
	require.NoError(t, err)
	require.Equal(t, 0.7, box.Score)
	_, err = BoxFromRow([]float64{1, 2, 3, 4})
	require.ErrorIs(t, err, ErrInvalidInference)
}
