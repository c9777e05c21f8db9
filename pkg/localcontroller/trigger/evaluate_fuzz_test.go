package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// complementaryOperators are pairs where, for one readable scalar, exactly one of the two holds.
var complementaryOperators = [][2]string{{"gt", "le"}, {">=", "<"}, {"eq", "!="}}

// FuzzEvaluate feeds Evaluate arbitrary JSON-decoded metric maps. Beyond not panicking, it checks
// what must hold whatever the values are: complementary operators never both fire, and exactly
// one fires for a readable scalar inside the window; a value error does not depend on the
// operator; an absent metric or a closed window never fires.
func FuzzEvaluate(f *testing.F) {
	type seed struct {
		metric    string
		threshold float64
		doc       string
		useNumber bool
		timed     bool
		start     uint16
		end       uint16
		clock     uint16
	}
	for _, s := range []seed{
		{"num_of_samples", 500, `{"num_of_samples": 620}`, false, true, 120, 360, 180},
		{"num_of_samples", 500, `{"num_of_samples": 120}`, true, true, 1320, 360, 1439},
		{"num_of_samples", 500, `{"num_of_samples": 620}`, false, true, 120, 360, 720},
		{"precision_delta[0]", 0.1, `{"precision_delta": [0.2, 0.05]}`, false, false, 0, 0, 0},
		{"precision_delta[1]", 0.1, `{"precision_delta": [0.2, 0.05]}`, true, false, 0, 0, 0},
		{"precision_delta[5]", 0.1, `{"precision_delta": [0.2, 0.05]}`, false, false, 0, 0, 0},
		{"precision_delta", 0.1, `{"precision_delta": [0.2, 0.05]}`, false, false, 0, 0, 0},
		{"precision_delta", 0.1, `{"precision_delta": []}`, false, false, 0, 0, 0},
		{"m", 0, `{"m": -0.0000005}`, false, false, 0, 0, 0},
		{"m", 0, `{"m": 1e-6}`, true, false, 0, 0, 0},
		{"m", 12, `{"m": "12"}`, false, false, 0, 0, 0},
		{"m", 12, `{"m": "twelve"}`, false, false, 0, 0, 0},
		{"m", 1, `{"m": true}`, false, false, 0, 0, 0},
		{"m", 1, `{"m": null}`, false, true, 750, 750, 750},
		{"m", 1, `{"m": [[1]]}`, false, false, 0, 0, 0},
		{"m[0]", 1, `{"m": [[1]]}`, false, false, 0, 0, 0},
		{"m[0]", 1, `{"m": 3}`, false, false, 0, 0, 0},
		{"m", 1, `{"m": {"a": 1}}`, false, false, 0, 0, 0},
		{"m", 1, `{"m": 1e400}`, true, false, 0, 0, 0},
		{"m", -1e308, `{"m": -1e308}`, false, false, 0, 0, 0},
		{"m", 1, `null`, false, false, 0, 0, 0},
		{"a[x]", 1, `{"a": [1]}`, false, false, 0, 0, 0},
	} {
		f.Add(s.metric, s.threshold, []byte(s.doc), s.useNumber, s.timed, s.start, s.end, s.clock)
	}
	f.Fuzz(func(t *testing.T, metric string, threshold float64, doc []byte, useNumber, timed bool, start, end, clock uint16) {
		var metrics map[string]any
		decoder := json.NewDecoder(bytes.NewReader(doc))
		if useNumber {
			decoder.UseNumber()
		}
		if err := decoder.Decode(&metrics); err != nil {
			return
		}

		spec := sednav1.Trigger{Condition: sednav1.TriggerCondition{Metric: metric, Threshold: threshold}}
		w := window{start: int(start) % minutesPerDay, end: int(end) % (endOfDay + 1)}
		if timed {
			spec.Timer = &sednav1.Timer{Start: formatClock(w.start), End: formatClock(w.end)}
		}
		minute := int(clock) % minutesPerDay
		now := time.Date(2024, time.March, 31, minute/60, minute%60, 0, 0, time.UTC)

		ref, refErr := parseMetric(metric)
		thresholdOK := !math.IsNaN(threshold) && !math.IsInf(threshold, 0)
		raw, present := metrics[ref.name]
		_, rawIsList := asList(raw)
		scalarSelected := present && (ref.indexed || !rawIsList)
		open := !timed || w.contains(minute)

		for _, pair := range complementaryOperators {
			var results [2]Result
			var errs [2]error
			for i, op := range pair {
				spec.Condition.Operator = op
				tr, err := New(spec)
				if refErr != nil || !thresholdOK {
					if err == nil || !errors.Is(err, ErrInvalidSpec) {
						t.Fatalf("New(%+v) = %v, want an invalid-spec error", spec, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("New(%+v): %v", spec, err)
				}
				results[i], errs[i] = tr.Evaluate(now, metrics)
			}

			if (errs[0] == nil) != (errs[1] == nil) {
				t.Fatalf("%s and %s disagree on whether %v is readable: %v / %v", pair[0], pair[1], raw, errs[0], errs[1])
			}
			if errs[0] != nil {
				var metricErr *MetricError
				if !errors.As(errs[0], &metricErr) || metricErr.Metric != ref.String() {
					t.Fatalf("error %v is not a *MetricError for %s", errs[0], ref)
				}
				if !present {
					t.Fatalf("error %v for a metric that is absent", errs[0])
				}
				if errs[0].Error() != errs[1].Error() || results[0] != (Result{}) || results[1] != (Result{}) {
					t.Fatalf("an unreadable value gave %v, %+v / %v, %+v", errs[0], results[0], errs[1], results[1])
				}
				continue
			}

			for i, result := range results {
				if result.Reason == "" {
					t.Fatalf("%s gave no reason", pair[i])
				}
				if !present && (result.Fired || !strings.Contains(result.Reason, "not reported yet")) {
					t.Fatalf("absent metric %s: %s gave %+v", ref.name, pair[i], result)
				}
				if !open && (result.Fired || !strings.Contains(result.Reason, "is outside the window")) {
					t.Fatalf("closed window %s at %s: %s gave %+v", w, formatClock(minute), pair[i], result)
				}
			}
			if results[0].Fired && results[1].Fired {
				t.Fatalf("%s and %s both fired for %v: %q / %q", pair[0], pair[1], raw, results[0].Reason, results[1].Reason)
			}
			if scalarSelected && open && results[0].Fired == results[1].Fired {
				t.Fatalf("exactly one of %s and %s must fire for %s in %v: %q / %q", pair[0], pair[1], ref, raw, results[0].Reason, results[1].Reason)
			}
		}
	})
}
