package trigger

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// maxIndex bounds list indexes so that an index parses to the same int on every platform; no
// worker reports lists anywhere near this long.
const maxIndex = math.MaxInt32

// metricRef is a parsed condition metric: a name and, for "name[i]", the index i.
type metricRef struct {
	name    string
	index   int
	indexed bool
}

// parseMetric parses "name" or "name[i]" following the CRD's pattern
// ^[A-Za-z_][A-Za-z0-9_.-]*(\[[0-9]+\])?$, so that a trigger that reaches the LC without API
// server validation (an old object, a direct store write) is held to the same rule.
func parseMetric(expr string) (metricRef, error) {
	if expr == "" {
		return metricRef{}, errors.New("is empty")
	}
	name, rest, hasIndex := strings.Cut(expr, "[")
	if err := checkMetricName(name); err != nil {
		return metricRef{}, err
	}
	if !hasIndex {
		return metricRef{name: name}, nil
	}
	closing := strings.IndexByte(rest, ']')
	if closing < 0 {
		return metricRef{}, errors.New("has no ']' closing the index")
	}
	if trailing := rest[closing+1:]; trailing != "" {
		return metricRef{}, fmt.Errorf("has %q after the index; only one index is allowed, at the end", trailing)
	}
	digits := rest[:closing]
	if digits == "" {
		return metricRef{}, errors.New("has an empty index")
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return metricRef{}, fmt.Errorf("has index %q, which is not a non-negative integer", digits)
		}
	}
	index, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || index > maxIndex {
		return metricRef{}, fmt.Errorf("has index %s, which is larger than %d", digits, maxIndex)
	}
	return metricRef{name: name, index: int(index), indexed: true}, nil
}

func checkMetricName(name string) error {
	if name == "" {
		return errors.New("has no name before the index")
	}
	for offset, r := range name {
		letter := r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z')
		if offset == 0 {
			if !letter {
				return fmt.Errorf("must start with a letter or '_', not %q", r)
			}
			continue
		}
		if !letter && !(r >= '0' && r <= '9') && r != '.' && r != '-' {
			return fmt.Errorf("has %q at offset %d; a name allows only letters, digits, '_', '.' and '-'", r, offset)
		}
	}
	return nil
}

// String gives the canonical spelling, which parseMetric reads back to the same metricRef.
func (m metricRef) String() string {
	if !m.indexed {
		return m.name
	}
	return m.name + "[" + strconv.Itoa(m.index) + "]"
}

// MetricError says why a reported metric value cannot be compared with the threshold. Unlike a
// metric that is not reported yet, it means a worker reports something the trigger cannot read,
// which waiting will not fix; callers surface it rather than retry quietly.
type MetricError struct {
	// Metric is the condition's metric expression, e.g. "precision_delta[0]".
	Metric string
	// Problem says what is wrong with the value.
	Problem string
}

func (e *MetricError) Error() string {
	return "metric " + e.Metric + ": " + e.Problem
}

// observation is what a metric expression selects from the metrics map.
type observation struct {
	// values holds one value for a scalar or an indexed element, every element for a list used
	// without an index.
	values []float64
	// list is set when the expression selected a whole list.
	list bool
}

// observe resolves ref in metrics. found is false when the metric is absent, which is not an error.
func observe(ref metricRef, metrics map[string]any) (obs observation, found bool, err error) {
	raw, found := metrics[ref.name]
	if !found {
		return observation{}, false, nil
	}
	fail := func(format string, args ...any) (observation, bool, error) {
		return observation{}, true, &MetricError{Metric: ref.String(), Problem: fmt.Sprintf(format, args...)}
	}

	list, isList := asList(raw)
	if ref.indexed {
		if !isList {
			return fail("cannot take index %d of a value of type %s; only lists can be indexed", ref.index, describeType(raw))
		}
		if ref.index >= list.Len() {
			return fail("index %d is out of range for a list of length %d", ref.index, list.Len())
		}
		value, problem := number(list.Index(ref.index).Interface())
		if problem != "" {
			return fail("element %d: %s", ref.index, problem)
		}
		return observation{values: []float64{value}}, true, nil
	}

	if !isList {
		value, problem := number(raw)
		if problem != "" {
			return fail("%s", problem)
		}
		return observation{values: []float64{value}}, true, nil
	}
	values := make([]float64, list.Len())
	for i := range values {
		value, problem := number(list.Index(i).Interface())
		if problem != "" {
			return fail("element %d: %s", i, problem)
		}
		values[i] = value
	}
	return observation{values: values, list: true}, true, nil
}

// asList accepts any slice or array so that typed lists ([]float64 from the IL manager's
// evaluation metrics) and JSON-decoded ones ([]any) are read alike. A string is not a list.
func asList(raw any) (reflect.Value, bool) {
	if raw == nil {
		return reflect.Value{}, false
	}
	value := reflect.ValueOf(raw)
	switch value.Kind() {
	case reflect.Slice, reflect.Array:
		return value, true
	default:
		return reflect.Value{}, false
	}
}

// number converts one scalar. It returns a problem sentence rather than an error so that the
// caller can say where the scalar came from (the metric, or which element of it).
func number(raw any) (float64, string) {
	var value float64
	switch v := raw.(type) {
	case float64:
		value = v
	case float32:
		value = float64(v)
	case int:
		value = float64(v)
	case int8:
		value = float64(v)
	case int16:
		value = float64(v)
	case int32:
		value = float64(v)
	case int64:
		value = float64(v)
	case uint:
		value = float64(v)
	case uint8:
		value = float64(v)
	case uint16:
		value = float64(v)
	case uint32:
		value = float64(v)
	case uint64:
		value = float64(v)
	case json.Number:
		parsed, ok := parseNumeric(string(v))
		if !ok {
			return 0, fmt.Sprintf("json.Number %q is not a number", string(v))
		}
		value = parsed
	case string:
		parsed, ok := parseNumeric(v)
		if !ok {
			return 0, fmt.Sprintf("string %q is not a number", v)
		}
		value = parsed
	case nil:
		return 0, "value is null; want a number, a numeric string or a list of them"
	default:
		if _, isList := asList(raw); isList {
			return 0, fmt.Sprintf("unsupported value type %s: lists of lists are not supported", describeType(raw))
		}
		return 0, fmt.Sprintf("unsupported value type %s; want a number, a numeric string or a list of them", describeType(raw))
	}
	// NaN is neither greater than, less than nor equal to anything, so every operator would be
	// false and "gt" would no longer be the negation of "le"; refuse it instead of guessing.
	if math.IsNaN(value) {
		return 0, "value is NaN, which cannot be compared"
	}
	return value, ""
}

// parseNumeric reads a numeric string. A number too large for float64 ("1e400", which a decoder
// using json.Number lets through) still compares correctly as ±Inf, so it is accepted.
func parseNumeric(text string) (float64, bool) {
	value, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return value, true
}

func describeType(raw any) string {
	if raw == nil {
		return "null"
	}
	return fmt.Sprintf("%T", raw)
}
