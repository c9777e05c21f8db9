package trigger

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// DefaultPeriod is how often a trigger is evaluated when checkPeriodSeconds is unset: upstream's
// stage loops ran every 10 seconds, so existing jobs keep their pace.
const DefaultPeriod = 10 * time.Second

// equalityTolerance absorbs float noise in reported metrics (0.1+0.2 vs 0.3), as upstream did.
const equalityTolerance = 1e-6

// maxCheckPeriodSeconds keeps the period representable as a time.Duration.
const maxCheckPeriodSeconds = math.MaxInt64 / int64(time.Second)

// ErrInvalidSpec is wrapped by every error New returns.
var ErrInvalidSpec = errors.New("invalid trigger")

// Trigger is a validated trigger: it fires when now is inside the timer's daily window (if there is
// one) and the condition holds for the reported metrics.
//
// A list-valued metric used without an index satisfies the condition only if EVERY element does;
// an empty list never fires. Use "name[i]" to test a single element.
//
// A Trigger is immutable and safe for concurrent use.
type Trigger struct {
	metric    metricRef
	operator  operator
	threshold float64
	// window is nil when the spec has no timer: the trigger may fire at any time.
	window *window
	period time.Duration
}

// Result is the outcome of one evaluation.
type Result struct {
	Fired bool
	// Reason says in one sentence why the trigger fired or not, for status conditions and logs.
	Reason string
}

// New validates spec and builds a trigger. The error names every offending field and its value.
func New(spec sednav1.Trigger) (*Trigger, error) {
	var problems []error
	trigger := &Trigger{threshold: spec.Condition.Threshold, period: DefaultPeriod}

	metric, err := parseMetric(spec.Condition.Metric)
	if err != nil {
		problems = append(problems, fmt.Errorf("condition.metric %q %w", spec.Condition.Metric, err))
	}
	trigger.metric = metric

	op, ok := parseOperator(spec.Condition.Operator)
	if !ok {
		problems = append(problems, fmt.Errorf("condition.operator %q is not one of %s", spec.Condition.Operator, operatorSpellings))
	}
	trigger.operator = op

	// JSON cannot carry NaN or Inf, but a spec built in Go can. Against an infinite threshold an
	// infinite value is neither greater, less nor within tolerance (Inf-Inf is NaN), so gt and le
	// would both be false.
	if math.IsNaN(spec.Condition.Threshold) || math.IsInf(spec.Condition.Threshold, 0) {
		problems = append(problems, fmt.Errorf("condition.threshold %v is not a finite number", spec.Condition.Threshold))
	}

	if spec.Timer != nil {
		start, startErr := parseClock(spec.Timer.Start, windowStart)
		if startErr != nil {
			problems = append(problems, fmt.Errorf("timer.start %q %w", spec.Timer.Start, startErr))
		}
		end, endErr := parseClock(spec.Timer.End, windowEnd)
		if endErr != nil {
			problems = append(problems, fmt.Errorf("timer.end %q %w", spec.Timer.End, endErr))
		}
		trigger.window = &window{start: start, end: end}
	}

	switch {
	case spec.CheckPeriodSeconds < 0:
		problems = append(problems, fmt.Errorf("checkPeriodSeconds %d is negative", spec.CheckPeriodSeconds))
	case int64(spec.CheckPeriodSeconds) > maxCheckPeriodSeconds:
		problems = append(problems, fmt.Errorf("checkPeriodSeconds %d is larger than %d", spec.CheckPeriodSeconds, maxCheckPeriodSeconds))
	case spec.CheckPeriodSeconds > 0:
		trigger.period = time.Duration(spec.CheckPeriodSeconds) * time.Second
	}

	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSpec, fieldErrors(problems))
	}
	return trigger, nil
}

// fieldErrors reports all invalid fields at once, on one line, so a status message shows every
// mistake rather than one per edit.
type fieldErrors []error

func (e fieldErrors) Error() string {
	messages := make([]string, len(e))
	for i, err := range e {
		messages[i] = err.Error()
	}
	return strings.Join(messages, "; ")
}

func (e fieldErrors) Unwrap() []error {
	return e
}

// Period is how often the trigger should be evaluated: checkPeriodSeconds, or DefaultPeriod when
// unset.
func (t *Trigger) Period() time.Duration {
	return t.period
}

// String describes the trigger for logs, e.g. "num_of_samples > 500 within 02:00-06:00".
func (t *Trigger) String() string {
	description := t.metric.String() + " " + t.operator.symbol() + " " + formatNumber(t.threshold)
	if t.window != nil {
		description += " within " + t.window.String()
	}
	return description
}

// Evaluate reports whether the trigger fires at now for metrics. now is the LC's local wall
// clock; the timer is compared in now's location.
//
// The condition is checked even outside the window, so that a metric the trigger cannot read is
// reported as soon as it appears instead of at the next window. Such a value (a bool, a nested
// list, an index out of range...) is a *MetricError. A metric absent from metrics is not an
// error: the trigger does not fire and the reason says the metric is not reported yet. On error
// the Result is zero.
func (t *Trigger) Evaluate(now time.Time, metrics map[string]any) (Result, error) {
	holds, conditionReason, err := t.evaluateCondition(metrics)
	if err != nil {
		return Result{}, err
	}
	if t.window == nil {
		return Result{Fired: holds, Reason: conditionReason}, nil
	}

	clock := minuteOfDay(now)
	inside := t.window.contains(clock)
	switch {
	case inside && holds:
		return Result{Fired: true, Reason: fmt.Sprintf("%s and %s is inside the window %s", conditionReason, formatClock(clock), t.window)}, nil
	case inside:
		return Result{Reason: conditionReason}, nil
	case holds:
		return Result{Reason: fmt.Sprintf("%s is outside the window %s", formatClock(clock), t.window)}, nil
	default:
		return Result{Reason: fmt.Sprintf("%s is outside the window %s and %s", formatClock(clock), t.window, conditionReason)}, nil
	}
}

func (t *Trigger) evaluateCondition(metrics map[string]any) (bool, string, error) {
	obs, found, err := observe(t.metric, metrics)
	if err != nil {
		return false, "", err
	}
	if !found {
		return false, fmt.Sprintf("metric %s not reported yet", t.metric.name), nil
	}
	symbol, threshold := t.operator.symbol(), formatNumber(t.threshold)

	if !obs.list {
		value := obs.values[0]
		if t.operator.holds(value, t.threshold) {
			return true, fmt.Sprintf("%s = %s is %s %s", t.metric, formatNumber(value), symbol, threshold), nil
		}
		return false, fmt.Sprintf("%s = %s is not %s %s", t.metric, formatNumber(value), symbol, threshold), nil
	}

	if len(obs.values) == 0 {
		return false, fmt.Sprintf("metric %s is an empty list, which never fires", t.metric), nil
	}
	for i, value := range obs.values {
		if !t.operator.holds(value, t.threshold) {
			return false, fmt.Sprintf("%s[%d] = %s is not %s %s, and a list fires only when every element does",
				t.metric, i, formatNumber(value), symbol, threshold), nil
		}
	}
	if len(obs.values) == 1 {
		return true, fmt.Sprintf("the only element of %s, %s, is %s %s", t.metric, formatNumber(obs.values[0]), symbol, threshold), nil
	}
	return true, fmt.Sprintf("all %d elements of %s are %s %s", len(obs.values), t.metric, symbol, threshold), nil
}

// formatNumber prints the shortest text that reads back as the same float64, so a reason shows
// 0.1, not 0.100000, and in plain notation over the range metrics live in: 'g' alone would print a
// million samples as 1e+06.
func formatNumber(value float64) string {
	magnitude := math.Abs(value)
	if magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e21) {
		return strconv.FormatFloat(value, 'f', -1, 64)
	}
	return strconv.FormatFloat(value, 'g', -1, 64)
}

// operator is a comparison with upstream's spellings folded together.
type operator int

const (
	opGreater operator = iota
	opGreaterOrEqual
	opEqual
	opNotEqual
	opLessOrEqual
	opLess
)

const operatorSpellings = "gt, ge, eq, ne, le, lt, >, >=, =, ==, !=, <=, <"

func parseOperator(spelling string) (operator, bool) {
	switch spelling {
	case "gt", ">":
		return opGreater, true
	case "ge", ">=":
		return opGreaterOrEqual, true
	case "eq", "=", "==":
		return opEqual, true
	case "ne", "!=":
		return opNotEqual, true
	case "le", "<=":
		return opLessOrEqual, true
	case "lt", "<":
		return opLess, true
	default:
		return 0, false
	}
}

// symbol is the spelling used in reasons, whichever the spec used.
func (op operator) symbol() string {
	switch op {
	case opGreater:
		return ">"
	case opGreaterOrEqual:
		return ">="
	case opEqual:
		return "=="
	case opNotEqual:
		return "!="
	case opLessOrEqual:
		return "<="
	case opLess:
		return "<"
	default:
		return fmt.Sprintf("operator(%d)", int(op))
	}
}

// holds compares with tolerance: values within equalityTolerance are equal, so ge and le include
// them and gt and lt exclude them. That keeps each operator the exact negation of its opposite.
func (op operator) holds(value, threshold float64) bool {
	equal := math.Abs(value-threshold) < equalityTolerance
	switch op {
	case opGreater:
		return value > threshold && !equal
	case opGreaterOrEqual:
		return value > threshold || equal
	case opEqual:
		return equal
	case opNotEqual:
		return !equal
	case opLessOrEqual:
		return value < threshold || equal
	case opLess:
		return value < threshold && !equal
	default:
		return false
	}
}
