package trigger_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/trigger"
)

func condition(metric, operator string, threshold float64) sednav1.Trigger {
	return sednav1.Trigger{Condition: sednav1.TriggerCondition{Metric: metric, Operator: operator, Threshold: threshold}}
}

func timed(spec sednav1.Trigger, start, end string) sednav1.Trigger {
	spec.Timer = &sednav1.Timer{Start: start, End: end}
	return spec
}

func mustNew(t *testing.T, spec sednav1.Trigger) *trigger.Trigger {
	t.Helper()
	tr, err := trigger.New(spec)
	require.NoError(t, err)
	return tr
}

// at is a wall-clock time on an arbitrary day in UTC; the day must not matter.
func at(hour, minute, second int) time.Time {
	return time.Date(2024, time.March, 31, hour, minute, second, 0, time.UTC)
}

func TestNewRejectsInvalidSpecs(t *testing.T) {
	valid := condition("num_of_samples", "gt", 500)
	tests := map[string]struct {
		spec sednav1.Trigger
		// wantErrs are the messages that must all appear in the error.
		wantErrs []string
	}{
		"unknown operator": {
			spec:     condition("num_of_samples", "bigger", 500),
			wantErrs: []string{`condition.operator "bigger" is not one of gt, ge, eq, ne, le, lt, >, >=, =, ==, !=, <=, <`},
		},
		"empty operator": {
			spec:     condition("num_of_samples", "", 500),
			wantErrs: []string{`condition.operator "" is not one of`},
		},
		"operator in upper case": {
			spec:     condition("num_of_samples", "GT", 500),
			wantErrs: []string{`condition.operator "GT" is not one of`},
		},
		"operator with spaces": {
			spec:     condition("num_of_samples", " >", 500),
			wantErrs: []string{`condition.operator " >" is not one of`},
		},
		"operator =>": {
			spec:     condition("num_of_samples", "=>", 500),
			wantErrs: []string{`condition.operator "=>" is not one of`},
		},
		"empty metric": {
			spec:     condition("", "gt", 500),
			wantErrs: []string{`condition.metric "" is empty`},
		},
		"metric with non-integer index": {
			spec:     condition("a[x]", "gt", 500),
			wantErrs: []string{`condition.metric "a[x]" has index "x", which is not a non-negative integer`},
		},
		"metric with negative index": {
			spec:     condition("precision_delta[-1]", "ge", 0.1),
			wantErrs: []string{`condition.metric "precision_delta[-1]" has index "-1"`},
		},
		"metric with two indexes": {
			spec:     condition("a[0][1]", "ge", 0.1),
			wantErrs: []string{`condition.metric "a[0][1]" has "[1]" after the index`},
		},
		"metric with a space": {
			spec:     condition("num of samples", "gt", 500),
			wantErrs: []string{`condition.metric "num of samples" has ' ' at offset 3`},
		},
		"NaN threshold": {
			spec:     condition("a", "gt", math.NaN()),
			wantErrs: []string{"condition.threshold NaN is not a finite number"},
		},
		"infinite threshold": {
			spec:     condition("a", "gt", math.Inf(-1)),
			wantErrs: []string{"condition.threshold -Inf is not a finite number"},
		},
		"unpadded timer start": {
			spec:     timed(valid, "9:00", "17:00"),
			wantErrs: []string{`timer.start "9:00" is not HH:MM`},
		},
		"timer end past the end of the day": {
			spec:     timed(valid, "09:00", "24:01"),
			wantErrs: []string{`timer.end "24:01" is not HH:MM: hour 24 is not in 00-23 (and 24 only in the end 24:00)`},
		},
		"timer starting at the end of the day": {
			spec:     timed(valid, "24:00", "06:00"),
			wantErrs: []string{`timer.start "24:00" is the end of the day and only valid as end; a window starting at midnight starts at 00:00`},
		},
		"timer end minute 60": {
			spec:     timed(valid, "09:00", "10:60"),
			wantErrs: []string{`timer.end "10:60" is not HH:MM: minute 60 is not in 00-59`},
		},
		"empty timer": {
			spec:     timed(valid, "", ""),
			wantErrs: []string{`timer.start "" is not HH:MM`, `timer.end "" is not HH:MM`},
		},
		"negative period": {
			spec:     sednav1.Trigger{CheckPeriodSeconds: -5, Condition: valid.Condition},
			wantErrs: []string{"checkPeriodSeconds -5 is negative"},
		},
		"period overflowing a duration": {
			spec:     sednav1.Trigger{CheckPeriodSeconds: math.MaxInt, Condition: valid.Condition},
			wantErrs: []string{"checkPeriodSeconds 9223372036854775807 is larger than 9223372036"},
		},
		"every field wrong at once": {
			spec: sednav1.Trigger{
				CheckPeriodSeconds: -1,
				Timer:              &sednav1.Timer{Start: "25:00", End: "noon"},
				Condition:          sednav1.TriggerCondition{Metric: "1x", Operator: "bigger", Threshold: math.NaN()},
			},
			wantErrs: []string{
				`condition.metric "1x" must start with a letter or '_', not '1'`,
				`condition.operator "bigger" is not one of`,
				"condition.threshold NaN is not a finite number",
				`timer.start "25:00" is not HH:MM: hour 25`,
				`timer.end "noon" is not HH:MM`,
				"checkPeriodSeconds -1 is negative",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := trigger.New(tc.spec)
			require.Nil(t, got)
			require.ErrorIs(t, err, trigger.ErrInvalidSpec)
			for _, want := range tc.wantErrs {
				require.ErrorContains(t, err, want)
			}
			require.NotContains(t, err.Error(), "\n", "a status message should be one line")
		})
	}
}

func TestNewAcceptsValidSpecs(t *testing.T) {
	tests := map[string]struct {
		spec       sednav1.Trigger
		wantPeriod time.Duration
		wantString string
	}{
		"upstream train trigger": {
			spec: sednav1.Trigger{
				CheckPeriodSeconds: 60,
				Timer:              &sednav1.Timer{Start: "02:00", End: "06:00"},
				Condition:          sednav1.TriggerCondition{Metric: "num_of_samples", Operator: ">", Threshold: 500},
			},
			wantPeriod: time.Minute,
			wantString: "num_of_samples > 500 within 02:00-06:00",
		},
		"upstream deploy trigger, period unset": {
			spec:       condition("precision_delta[0]", "ge", 0.1),
			wantPeriod: trigger.DefaultPeriod,
			wantString: "precision_delta[0] >= 0.1",
		},
		"canonical index and operator in String": {
			spec:       sednav1.Trigger{CheckPeriodSeconds: 1, Condition: sednav1.TriggerCondition{Metric: "recall[007]", Operator: "=", Threshold: -2.5}},
			wantPeriod: time.Second,
			wantString: "recall[7] == -2.5",
		},
		"upstream sample timer to 24:00": {
			spec:       timed(condition("num_of_samples", "gt", 500), "02:00", "24:00"),
			wantPeriod: 10 * time.Second,
			wantString: "num_of_samples > 500 within 02:00-24:00",
		},
		"wrapping timer": {
			spec:       timed(condition("a", "ne", 0), "22:00", "06:00"),
			wantPeriod: 10 * time.Second,
			wantString: "a != 0 within 22:00-06:00",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tr := mustNew(t, tc.spec)
			require.Equal(t, tc.wantPeriod, tr.Period())
			require.Equal(t, tc.wantString, tr.String())
		})
	}
}

func TestDefaultPeriodIsUpstreamLoopPeriod(t *testing.T) {
	require.Equal(t, 10*time.Second, trigger.DefaultPeriod)
}

// TestOperators runs every spelling of every operator against values around the threshold,
// including the edges of the 1e-6 equality tolerance.
func TestOperators(t *testing.T) {
	const threshold = 0.5
	values := []struct {
		label string
		value float64
	}{
		{"well below", threshold - 1},
		{"below, outside tolerance", threshold - 2e-6},
		{"below, within tolerance", threshold - 0.5e-6},
		{"exactly equal", threshold},
		{"above, within tolerance", threshold + 0.5e-6},
		{"above, outside tolerance", threshold + 2e-6},
		{"well above", threshold + 1},
	}
	tests := map[string]struct {
		spellings []string
		// want is indexed like values.
		want [7]bool
	}{
		"greater than":     {spellings: []string{"gt", ">"}, want: [7]bool{false, false, false, false, false, true, true}},
		"greater or equal": {spellings: []string{"ge", ">="}, want: [7]bool{false, false, true, true, true, true, true}},
		"equal":            {spellings: []string{"eq", "=", "=="}, want: [7]bool{false, false, true, true, true, false, false}},
		"not equal":        {spellings: []string{"ne", "!="}, want: [7]bool{true, true, false, false, false, true, true}},
		"less or equal":    {spellings: []string{"le", "<="}, want: [7]bool{true, true, true, true, true, false, false}},
		"less than":        {spellings: []string{"lt", "<"}, want: [7]bool{true, true, false, false, false, false, false}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, spelling := range tc.spellings {
				tr := mustNew(t, condition("m", spelling, threshold))
				for i, v := range values {
					got, err := tr.Evaluate(at(12, 0, 0), map[string]any{"m": v.value})
					require.NoError(t, err)
					require.Equal(t, tc.want[i], got.Fired, "%s with m %s (%v): %s", spelling, v.label, v.value, got.Reason)
				}
			}
		})
	}
}

// TestToleranceEdge uses threshold 0, where the edge 1e-6 is exact in floating point: a value
// exactly 1e-6 away is no longer equal.
func TestToleranceEdge(t *testing.T) {
	tests := map[string]struct {
		operator string
		value    float64
		want     bool
	}{
		"eq just inside":     {operator: "eq", value: 0.999e-6, want: true},
		"eq at the edge":     {operator: "eq", value: 1e-6, want: false},
		"eq at the -edge":    {operator: "eq", value: -1e-6, want: false},
		"gt just inside":     {operator: "gt", value: 0.999e-6, want: false},
		"gt at the edge":     {operator: "gt", value: 1e-6, want: true},
		"lt just inside":     {operator: "lt", value: -0.999e-6, want: false},
		"lt at the -edge":    {operator: "lt", value: -1e-6, want: true},
		"ge just inside":     {operator: "ge", value: -0.999e-6, want: true},
		"ge at the -edge":    {operator: "ge", value: -1e-6, want: false},
		"le just inside":     {operator: "le", value: 0.999e-6, want: true},
		"le at the edge":     {operator: "le", value: 1e-6, want: false},
		"ne at the edge":     {operator: "ne", value: 1e-6, want: true},
		"ne just inside":     {operator: "ne", value: -0.999e-6, want: false},
		"float noise equals": {operator: "eq", value: 0.1 + 0.2 - 0.3, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := mustNew(t, condition("m", tc.operator, 0)).Evaluate(at(0, 0, 0), map[string]any{"m": tc.value})
			require.NoError(t, err)
			require.Equal(t, tc.want, got.Fired, got.Reason)
		})
	}
}

// TestValueTypes evaluates "m >= 2" against every kind of value a worker report or a manager may
// put in the metrics map.
func TestValueTypes(t *testing.T) {
	tests := map[string]struct {
		value      any
		wantFired  bool
		wantReason string
		// wantErr is the whole *MetricError message when the value cannot be read.
		wantErr string
	}{
		"int":            {value: 2, wantFired: true, wantReason: "m = 2 is >= 2"},
		"int below":      {value: 1, wantReason: "m = 1 is not >= 2"},
		"int8":           {value: int8(-3), wantReason: "m = -3 is not >= 2"},
		"int16":          {value: int16(300), wantFired: true, wantReason: "m = 300 is >= 2"},
		"int32":          {value: int32(2), wantFired: true, wantReason: "m = 2 is >= 2"},
		"int64":          {value: int64(1) << 40, wantFired: true, wantReason: "m = 1099511627776 is >= 2"},
		"int64 negative": {value: int64(-1) << 40, wantReason: "m = -1099511627776 is not >= 2"},
		"uint":           {value: uint(7), wantFired: true, wantReason: "m = 7 is >= 2"},
		"uint8":          {value: uint8(1), wantReason: "m = 1 is not >= 2"},
		"uint16":         {value: uint16(2), wantFired: true, wantReason: "m = 2 is >= 2"},
		"uint32":         {value: uint32(2), wantFired: true, wantReason: "m = 2 is >= 2"},
		// Comparison is in float64, so integers beyond 2^53 are rounded, which a threshold cannot tell.
		"uint64 max":                {value: uint64(math.MaxUint64), wantFired: true, wantReason: "m = 18446744073709552000 is >= 2"},
		"float32":                   {value: float32(1.5), wantReason: "m = 1.5 is not >= 2"},
		"float32 near threshold":    {value: float32(1.9999999), wantFired: true, wantReason: "m = 1.9999998807907104 is >= 2"},
		"float64":                   {value: 2.25, wantFired: true, wantReason: "m = 2.25 is >= 2"},
		"float64 large":             {value: 1234567.25, wantFired: true, wantReason: "m = 1234567.25 is >= 2"},
		"float64 tiny":              {value: 1.5e-9, wantReason: "m = 1.5e-09 is not >= 2"},
		"float64 huge":              {value: 2.5e300, wantFired: true, wantReason: "m = 2.5e+300 is >= 2"},
		"float64 +Inf":              {value: math.Inf(1), wantFired: true, wantReason: "m = +Inf is >= 2"},
		"float64 -Inf":              {value: math.Inf(-1), wantReason: "m = -Inf is not >= 2"},
		"json.Number integer":       {value: json.Number("2"), wantFired: true, wantReason: "m = 2 is >= 2"},
		"json.Number float":         {value: json.Number("1.99"), wantReason: "m = 1.99 is not >= 2"},
		"json.Number exponent":      {value: json.Number("2e3"), wantFired: true, wantReason: "m = 2000 is >= 2"},
		"json.Number beyond float":  {value: json.Number("1e400"), wantFired: true, wantReason: "m = +Inf is >= 2"},
		"numeric string":            {value: "3", wantFired: true, wantReason: "m = 3 is >= 2"},
		"numeric string float":      {value: "0.5", wantReason: "m = 0.5 is not >= 2"},
		"numeric string negative":   {value: "-1e2", wantReason: "m = -100 is not >= 2"},
		"string beyond float":       {value: "-1e400", wantReason: "m = -Inf is not >= 2"},
		"non-numeric string":        {value: "high", wantErr: `metric m: string "high" is not a number`},
		"empty string":              {value: "", wantErr: `metric m: string "" is not a number`},
		"padded numeric string":     {value: " 3", wantErr: `metric m: string " 3" is not a number`},
		"NaN string":                {value: "NaN", wantErr: "metric m: value is NaN, which cannot be compared"},
		"NaN float":                 {value: math.NaN(), wantErr: "metric m: value is NaN, which cannot be compared"},
		"invalid json.Number":       {value: json.Number("1..2"), wantErr: `metric m: json.Number "1..2" is not a number`},
		"bool":                      {value: true, wantErr: "metric m: unsupported value type bool; want a number, a numeric string or a list of them"},
		"null":                      {value: nil, wantErr: "metric m: value is null; want a number, a numeric string or a list of them"},
		"map":                       {value: map[string]any{"x": 1}, wantErr: "metric m: unsupported value type map[string]interface {}"},
		"struct":                    {value: struct{ X int }{X: 3}, wantErr: "metric m: unsupported value type struct { X int }"},
		"pointer to float":          {value: new(float64), wantErr: "metric m: unsupported value type *float64"},
		"named float type":          {value: time.Duration(5), wantErr: "metric m: unsupported value type time.Duration"},
		"list of lists":             {value: []any{[]any{3.0}}, wantErr: "metric m: element 0: unsupported value type []interface {}: lists of lists are not supported"},
		"typed list of lists":       {value: [][]float64{{3}}, wantErr: "metric m: element 0: unsupported value type []float64: lists of lists are not supported"},
		"list with a bool element":  {value: []any{3.0, false}, wantErr: "metric m: element 1: unsupported value type bool"},
		"list with a null element":  {value: []any{3.0, nil}, wantErr: "metric m: element 1: value is null"},
		"list with a word element":  {value: []string{"3", "x"}, wantErr: `metric m: element 1: string "x" is not a number`},
		"list with a NaN element":   {value: []float64{3, math.NaN()}, wantErr: "metric m: element 1: value is NaN"},
		"bad element beats failing": {value: []any{0.0, "x"}, wantErr: `metric m: element 1: string "x" is not a number`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := mustNew(t, condition("m", "ge", 2)).Evaluate(at(12, 0, 0), map[string]any{"m": tc.value})
			if tc.wantErr != "" {
				var metricErr *trigger.MetricError
				require.ErrorAs(t, err, &metricErr)
				require.Equal(t, "m", metricErr.Metric)
				require.True(t, strings.HasPrefix(err.Error(), tc.wantErr), "error %q does not start with %q", err, tc.wantErr)
				require.False(t, got.Fired)
				return
			}
			require.NoError(t, err)
			require.Equal(t, trigger.Result{Fired: tc.wantFired, Reason: tc.wantReason}, got)
		})
	}
}

func TestIndexing(t *testing.T) {
	deltas := []float64{0.2, 0.05}
	tests := map[string]struct {
		metric     string
		metrics    map[string]any
		wantFired  bool
		wantReason string
		wantErr    string
	}{
		"first element holds": {
			metric: "precision_delta[0]", metrics: map[string]any{"precision_delta": deltas},
			wantFired: true, wantReason: "precision_delta[0] = 0.2 is >= 0.1",
		},
		"second element does not": {
			metric: "precision_delta[1]", metrics: map[string]any{"precision_delta": deltas},
			wantReason: "precision_delta[1] = 0.05 is not >= 0.1",
		},
		"leading zeros index the same element": {
			metric: "precision_delta[00]", metrics: map[string]any{"precision_delta": deltas},
			wantFired: true, wantReason: "precision_delta[0] = 0.2 is >= 0.1",
		},
		"element of a JSON-decoded list": {
			metric: "p[1]", metrics: map[string]any{"p": []any{json.Number("0.01"), "0.3"}},
			wantFired: true, wantReason: "p[1] = 0.3 is >= 0.1",
		},
		"element of a list of ints": {
			metric: "n[2]", metrics: map[string]any{"n": []int{0, 0, 1}},
			wantFired: true, wantReason: "n[2] = 1 is >= 0.1",
		},
		"element of an array": {
			metric: "n[1]", metrics: map[string]any{"n": [2]float32{1, 0}},
			wantReason: "n[1] = 0 is not >= 0.1",
		},
		"bad element elsewhere is not read": {
			metric: "p[0]", metrics: map[string]any{"p": []any{0.5, true}},
			wantFired: true, wantReason: "p[0] = 0.5 is >= 0.1",
		},
		"missing metric": {
			metric: "precision_delta[0]", metrics: map[string]any{"recall_delta": deltas},
			wantReason: "metric precision_delta not reported yet",
		},
		"index past the end": {
			metric: "precision_delta[2]", metrics: map[string]any{"precision_delta": deltas},
			wantErr: "metric precision_delta[2]: index 2 is out of range for a list of length 2",
		},
		"index into an empty list": {
			metric: "p[0]", metrics: map[string]any{"p": []any{}},
			wantErr: "metric p[0]: index 0 is out of range for a list of length 0",
		},
		"index on a number": {
			metric: "num_of_samples[0]", metrics: map[string]any{"num_of_samples": 600},
			wantErr: "metric num_of_samples[0]: cannot take index 0 of a value of type int; only lists can be indexed",
		},
		"index on a numeric string": {
			metric: "p[0]", metrics: map[string]any{"p": "12"},
			wantErr: "metric p[0]: cannot take index 0 of a value of type string; only lists can be indexed",
		},
		"index on null": {
			metric: "p[0]", metrics: map[string]any{"p": nil},
			wantErr: "metric p[0]: cannot take index 0 of a value of type null; only lists can be indexed",
		},
		"indexed element is a list": {
			metric: "p[0]", metrics: map[string]any{"p": []any{[]any{1.0}}},
			wantErr: "metric p[0]: element 0: unsupported value type []interface {}: lists of lists are not supported",
		},
		"indexed element is a bool": {
			metric: "p[1]", metrics: map[string]any{"p": []any{1.0, true}},
			wantErr: "metric p[1]: element 1: unsupported value type bool",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := mustNew(t, condition(tc.metric, "ge", 0.1)).Evaluate(at(12, 0, 0), tc.metrics)
			if tc.wantErr != "" {
				var metricErr *trigger.MetricError
				require.ErrorAs(t, err, &metricErr)
				require.True(t, strings.HasPrefix(err.Error(), tc.wantErr), "error %q does not start with %q", err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, trigger.Result{Fired: tc.wantFired, Reason: tc.wantReason}, got)
		})
	}
}

// TestListWithoutIndex covers the rule that a list used without an index fires only when the
// condition holds for every element, and an empty list never fires.
func TestListWithoutIndex(t *testing.T) {
	tests := map[string]struct {
		operator   string
		value      any
		wantFired  bool
		wantReason string
	}{
		"every element holds": {
			operator: "ge", value: []float64{0.2, 0.15, 0.1},
			wantFired: true, wantReason: "all 3 elements of precision_delta are >= 0.1",
		},
		"first element fails": {
			operator: "ge", value: []float64{0.05, 0.2},
			wantReason: "precision_delta[0] = 0.05 is not >= 0.1, and a list fires only when every element does",
		},
		"last element fails": {
			operator: "ge", value: []any{0.3, json.Number("0.2"), "0.01"},
			wantReason: "precision_delta[2] = 0.01 is not >= 0.1, and a list fires only when every element does",
		},
		"upstream's silent zero would not fire; here it does": {
			operator: "gt", value: []float64{0.12, 0.11},
			wantFired: true, wantReason: "all 2 elements of precision_delta are > 0.1",
		},
		"single element": {
			operator: "lt", value: []int{0},
			wantFired: true, wantReason: "the only element of precision_delta, 0, is < 0.1",
		},
		"empty list never fires, even for ne": {
			operator: "ne", value: []float64{},
			wantReason: "metric precision_delta is an empty list, which never fires",
		},
		"empty JSON list never fires, even for le": {
			operator: "le", value: []any{},
			wantReason: "metric precision_delta is an empty list, which never fires",
		},
		"nil typed list is empty": {
			operator: "ge", value: []float64(nil),
			wantReason: "metric precision_delta is an empty list, which never fires",
		},
		"array of uint64": {
			operator: "ge", value: [2]uint64{1, 2},
			wantFired: true, wantReason: "all 2 elements of precision_delta are >= 0.1",
		},
		"gt and le can both be false on a mixed list": {
			operator: "le", value: []float64{0.0, 0.2},
			wantReason: "precision_delta[1] = 0.2 is not <= 0.1, and a list fires only when every element does",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := mustNew(t, condition("precision_delta", tc.operator, 0.1)).Evaluate(at(12, 0, 0), map[string]any{"precision_delta": tc.value})
			require.NoError(t, err)
			require.Equal(t, trigger.Result{Fired: tc.wantFired, Reason: tc.wantReason}, got)
		})
	}
}

func TestMissingMetric(t *testing.T) {
	tests := map[string]struct {
		metrics map[string]any
	}{
		"nil map":             {metrics: nil},
		"empty map":           {metrics: map[string]any{}},
		"other metrics only":  {metrics: map[string]any{"num_of_samples_total": 900, "Num_of_samples": 900}},
		"prefix is not match": {metrics: map[string]any{"num_of_sample": 900}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := mustNew(t, condition("num_of_samples", "gt", 500)).Evaluate(at(12, 0, 0), tc.metrics)
			require.NoError(t, err)
			require.Equal(t, trigger.Result{Reason: "metric num_of_samples not reported yet"}, got)
		})
	}
}

func TestTimer(t *testing.T) {
	enough := map[string]any{"num_of_samples": 620}
	tokyo := time.FixedZone("JST", 9*60*60)
	tests := map[string]struct {
		start, end string
		now        time.Time
		metrics    map[string]any
		wantFired  bool
		wantReason string
	}{
		"before the window": {
			start: "02:00", end: "06:00", now: at(1, 59, 59), metrics: enough,
			wantReason: "01:59 is outside the window 02:00-06:00",
		},
		"window start is inclusive": {
			start: "02:00", end: "06:00", now: at(2, 0, 0), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 02:00 is inside the window 02:00-06:00",
		},
		"window end is inclusive to its last second": {
			start: "02:00", end: "06:00", now: at(6, 0, 59), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 06:00 is inside the window 02:00-06:00",
		},
		"after the window": {
			start: "02:00", end: "06:00", now: at(6, 1, 0), metrics: enough,
			wantReason: "06:01 is outside the window 02:00-06:00",
		},
		"wrapping window late evening": {
			start: "22:00", end: "06:00", now: at(23, 59, 0), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 23:59 is inside the window 22:00-06:00",
		},
		"wrapping window midnight": {
			start: "22:00", end: "06:00", now: at(0, 0, 0), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 00:00 is inside the window 22:00-06:00",
		},
		"wrapping window early morning": {
			start: "22:00", end: "06:00", now: at(5, 0, 0), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 05:00 is inside the window 22:00-06:00",
		},
		"wrapping window midday": {
			start: "22:00", end: "06:00", now: at(12, 0, 0), metrics: enough,
			wantReason: "12:00 is outside the window 22:00-06:00",
		},
		"wrapping window just before start": {
			start: "22:00", end: "06:00", now: at(21, 59, 59), metrics: enough,
			wantReason: "21:59 is outside the window 22:00-06:00",
		},
		"to 24:00 at 23:59": {
			start: "02:00", end: "24:00", now: at(23, 59, 59), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 23:59 is inside the window 02:00-24:00",
		},
		"to 24:00 at 00:00, which is the next day's": {
			start: "02:00", end: "24:00", now: at(0, 0, 0), metrics: enough,
			wantReason: "00:00 is outside the window 02:00-24:00",
		},
		"to 24:00 at its start": {
			start: "02:00", end: "24:00", now: at(2, 0, 0), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 02:00 is inside the window 02:00-24:00",
		},
		"to 24:00 before its start": {
			start: "02:00", end: "24:00", now: at(1, 59, 0), metrics: enough,
			wantReason: "01:59 is outside the window 02:00-24:00",
		},
		"00:00 to 24:00 at 00:00": {
			start: "00:00", end: "24:00", now: at(0, 0, 0), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 00:00 is inside the window 00:00-24:00",
		},
		"00:00 to 24:00 at 23:59": {
			start: "00:00", end: "24:00", now: at(23, 59, 30), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 23:59 is inside the window 00:00-24:00",
		},
		"late window to 24:00 does not wrap": {
			start: "23:00", end: "24:00", now: at(0, 30, 0), metrics: enough,
			wantReason: "00:30 is outside the window 23:00-24:00",
		},
		"late window to 00:00 wraps into midnight": {
			start: "23:00", end: "00:00", now: at(0, 0, 0), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 00:00 is inside the window 23:00-00:00",
		},
		"single-minute window, in that minute": {
			start: "12:30", end: "12:30", now: at(12, 30, 45), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 12:30 is inside the window 12:30-12:30",
		},
		"single-minute window, next minute": {
			start: "12:30", end: "12:30", now: at(12, 31, 0), metrics: enough,
			wantReason: "12:31 is outside the window 12:30-12:30",
		},
		"compared in now's location, not UTC": {
			// 12:00 in Tokyo is 03:00 UTC, which would be inside the window if read in UTC.
			start: "02:00", end: "06:00", now: time.Date(2024, time.March, 31, 12, 0, 0, 0, tokyo), metrics: enough,
			wantReason: "12:00 is outside the window 02:00-06:00",
		},
		"local early morning is inside even when UTC is not": {
			start: "02:00", end: "06:00", now: time.Date(2024, time.March, 31, 3, 0, 0, 0, tokyo), metrics: enough,
			wantFired: true, wantReason: "num_of_samples = 620 is > 500 and 03:00 is inside the window 02:00-06:00",
		},
		"inside the window, condition false": {
			start: "02:00", end: "06:00", now: at(3, 0, 0), metrics: map[string]any{"num_of_samples": 120},
			wantReason: "num_of_samples = 120 is not > 500",
		},
		"outside the window, condition false": {
			start: "02:00", end: "06:00", now: at(7, 0, 0), metrics: map[string]any{"num_of_samples": 120},
			wantReason: "07:00 is outside the window 02:00-06:00 and num_of_samples = 120 is not > 500",
		},
		"inside the window, metric missing": {
			start: "02:00", end: "06:00", now: at(3, 0, 0), metrics: nil,
			wantReason: "metric num_of_samples not reported yet",
		},
		"outside the window, metric missing": {
			start: "02:00", end: "06:00", now: at(7, 0, 0), metrics: nil,
			wantReason: "07:00 is outside the window 02:00-06:00 and metric num_of_samples not reported yet",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tr := mustNew(t, timed(condition("num_of_samples", "gt", 500), tc.start, tc.end))
			got, err := tr.Evaluate(tc.now, tc.metrics)
			require.NoError(t, err)
			require.Equal(t, trigger.Result{Fired: tc.wantFired, Reason: tc.wantReason}, got)
		})
	}
}

// TestTimerDoesNotHideBadValues: a value the trigger cannot read is reported even outside the
// window, so that a broken worker shows up at once rather than at the next window.
func TestTimerDoesNotHideBadValues(t *testing.T) {
	tr := mustNew(t, timed(condition("num_of_samples", "gt", 500), "02:00", "06:00"))
	got, err := tr.Evaluate(at(12, 0, 0), map[string]any{"num_of_samples": true})
	require.EqualError(t, err, "metric num_of_samples: unsupported value type bool; want a number, a numeric string or a list of them")
	require.Equal(t, trigger.Result{}, got)
	require.False(t, errors.Is(err, trigger.ErrInvalidSpec), "a bad value is not a bad spec")
}

// TestEvaluateDoesNotModifyMetrics guards the managers' maps, which they keep and reuse.
func TestEvaluateDoesNotModifyMetrics(t *testing.T) {
	deltas := []any{json.Number("0.2"), "0.3"}
	metrics := map[string]any{"precision_delta": deltas, "other": 1}
	tr := mustNew(t, condition("precision_delta", "ge", 0.1))
	_, err := tr.Evaluate(at(12, 0, 0), metrics)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"precision_delta": []any{json.Number("0.2"), "0.3"}, "other": 1}, metrics)
}
