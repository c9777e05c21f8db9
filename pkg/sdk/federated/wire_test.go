package federated

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// Python's repr of a float, which json.dumps writes.
func TestPythonFloatFormat(t *testing.T) {
	for value, want := range map[float64]string{
		1:                      "1.0",
		0:                      "0.0",
		math.Copysign(0, -1):   "-0.0",
		2.5:                    "2.5",
		0.1:                    "0.1",
		0.0001:                 "0.0001",
		0.00001:                "1e-05",
		1.5e-7:                 "1.5e-07",
		123456789:              "123456789.0",
		1e15:                   "1000000000000000.0",
		1e16:                   "1e+16",
		-3.25e20:               "-3.25e+20",
		1.0 / 3:                "0.3333333333333333",
		math.Inf(1):            "Infinity",
		math.Inf(-1):           "-Infinity",
		float64(float32(0.1)):  "0.10000000149011612",
		-0.000123:              "-0.000123",
		9.999999999999999e-05:  "9.999999999999999e-05",
		1.7976931348623157e308: "1.7976931348623157e+308",
	} {
		require.Equal(t, want, string(appendPythonFloat(nil, value)), "%v", value)
	}
}

func TestJSONWeightsRoundTrip(t *testing.T) {
	w := Weights{
		{Shape: []int{2, 1, 3}, Values: []float64{1, 2, 3, 4.5, -6, 1e-9}},
		{Shape: []int{}, Values: []float64{0.25}},
		{Shape: []int{0}, Values: []float64{}},
		{Shape: []int{2, 0}, Values: []float64{}},
	}
	encoded := appendJSONWeights(nil, w)
	require.Equal(t, `[[[[1.0,2.0,3.0]],[[4.5,-6.0,1e-09]]],0.25,[],[[],[]]]`, string(encoded))
	require.True(t, json.Valid(encoded))
	back, err := parseJSONWeights(encoded)
	require.NoError(t, err)
	require.Equal(t, w, back)
	// Whitespace as json.dumps writes it.
	back, err = parseJSONWeights([]byte(" [ [ [1.0, 2.0] ], 3 ] "))
	require.NoError(t, err)
	require.Equal(t, Weights{{Shape: []int{1, 2}, Values: []float64{1, 2}}, {Shape: []int{}, Values: []float64{3}}}, back)
}

func TestParseJSONWeightsRejects(t *testing.T) {
	for name, input := range map[string]string{
		"not a list":       `{"a":1}`,
		"ragged":           `[[[1.0],[1.0,2.0]]]`,
		"mixed depth":      `[[1.0,[2.0]]]`,
		"list after leaf":  `[[[1.0],2.0]]`,
		"string":           `[["1.0"]]`,
		"NaN":              `[[NaN]]`,
		"overflow":         `[[1e400]]`,
		"trailing data":    `[[1.0]] x`,
		"unterminated":     `[[1.0,`,
		"empty then full":  `[[[],[1.0]]]`,
		"too deep":         `[[[[[[[[[[[[[[[[[[1.0]]]]]]]]]]]]]]]]]]`,
		"missing comma":    `[[1.0 2.0]]`,
		"bad number":       `[[1.0.0]]`,
		"null":             `null`,
		"layers then junk": `[[1.0]]]`,
	} {
		_, err := parseJSONWeights([]byte(input))
		require.ErrorIs(t, err, errNotWeights, name)
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	base := 3
	w := Weights{{Shape: []int{2, 2}, Values: []float64{1, -2, 0.5, 1e-3}}, {Shape: []int{}, Values: []float64{7}}}
	for _, dtype := range []DType{Float32, Float64} {
		frame, err := encodeBinary(binaryHeader{Type: TypeUpdateWeight, Client: "c", JobName: "j", NumSamples: 12, BaseRound: &base, Metrics: map[string]float64{"accuracy": 0.9}}, w, dtype)
		require.NoError(t, err)
		u, gotType, err := decodeBinaryUpdate(frame)
		require.NoError(t, err)
		require.Equal(t, dtype, gotType)
		require.Equal(t, "c", u.Client)
		require.Equal(t, 12, u.NumSamples)
		require.Equal(t, 3, *u.BaseRound)
		require.Equal(t, 0.9, u.Metrics["accuracy"])
		for i := range w {
			require.Equal(t, w[i].Shape, u.Weights[i].Shape)
			require.InDeltaSlice(t, w[i].Values, u.Weights[i].Values, 1e-7)
		}
	}
}

func TestBinaryRejects(t *testing.T) {
	good, err := encodeBinary(binaryHeader{Type: TypeUpdateWeight, Client: "c", NumSamples: 1}, Weights{{Shape: []int{2}, Values: []float64{1, 2}}}, Float32)
	require.NoError(t, err)
	mutate := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, frame := range map[string][]byte{
		"short":          good[:5],
		"bad magic":      mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"bad version":    mutate(func(b []byte) []byte { b[4] = 9; return b }),
		"bad dtype":      mutate(func(b []byte) []byte { b[5] = 2; return b }),
		"header too big": mutate(func(b []byte) []byte { b[8], b[9], b[10], b[11] = 0xff, 0xff, 0xff, 0x7f; return b }),
		"payload short":  good[:len(good)-1],
		"payload long":   append(append([]byte(nil), good...), 0, 0, 0, 0),
		"NaN value": mutate(func(b []byte) []byte {
			copy(b[len(b)-4:], []byte{0x00, 0x00, 0xc0, 0x7f})
			return b
		}),
	} {
		_, _, err := decodeBinaryUpdate(frame)
		require.Error(t, err, name)
	}
	huge, err := encodeBinary(binaryHeader{Type: TypeUpdateWeight, Client: "c"}, nil, Float32)
	require.NoError(t, err)
	_, _, err = decodeBinaryUpdate(huge)
	require.ErrorContains(t, err, "no weights")
}

func FuzzParseJSONWeights(f *testing.F) {
	for _, seed := range []string{`[[1.0,2.0],[[3.0]],4.0]`, `[]`, `[[],[[]]]`, `[[1e-5, -0.0]]`, `[[[1],[2,3]]]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := parseJSONWeights(data)
		if err != nil {
			return
		}
		require.NoError(t, w.Validate())
		again, err := parseJSONWeights(appendJSONWeights(nil, w))
		require.NoError(t, err)
		require.Equal(t, w, again)
	})
}

func FuzzDecodeBinary(f *testing.F) {
	seed, err := encodeBinary(binaryHeader{Type: TypeUpdateWeight, Client: "c", NumSamples: 1}, Weights{{Shape: []int{2}, Values: []float64{1, 2}}}, Float64)
	require.NoError(f, err)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, w, dtype, err := decodeBinary(data)
		if err != nil {
			return
		}
		if w != nil {
			require.NoError(t, w.Validate())
		}
		again, err := encodeBinary(h, w, dtype)
		require.NoError(t, err)
		_, w2, _, err := decodeBinary(again)
		require.NoError(t, err)
		require.Equal(t, len(w), len(w2))
	})
}
