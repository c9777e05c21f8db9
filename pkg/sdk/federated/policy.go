package federated

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Policy decides when a round closes and when training stops. The zero
// values of MinClients and RoundDeadline reproduce upstream: every round
// waits for Participants updates, however long that takes.
type Policy struct {
	// Participants is the number of training workers (PARTICIPANTS_COUNT).
	// A round closes as soon as this many clients contributed.
	Participants int
	// MinClients is the quorum: a round never closes with fewer updates.
	// 0 means Participants.
	MinClients int
	// RoundDeadline, when positive, closes a round that has its quorum but
	// not every participant once this long has passed since the round's
	// first accepted update. Measuring from the first update rather than
	// from the previous round's close means slow local training of every
	// client never produces a short round, and a round with no update at
	// all never expires.
	RoundDeadline time.Duration
	// ExitRound is the number of rounds after which training stops
	// (upstream's exit_round), at least 1.
	ExitRound int
	// Target, when set, stops training after the first round whose
	// aggregated client metric reaches it.
	Target *TargetMetric
}

func (p *Policy) normalize() error {
	if p.Participants < 1 {
		return fmt.Errorf("participants count %d must be at least 1", p.Participants)
	}
	if p.MinClients == 0 {
		p.MinClients = p.Participants
	}
	if p.MinClients < 1 || p.MinClients > p.Participants {
		return fmt.Errorf("minimum clients per round %d must be between 1 and the participants count %d", p.MinClients, p.Participants)
	}
	if p.RoundDeadline < 0 {
		return fmt.Errorf("round deadline %v must not be negative", p.RoundDeadline)
	}
	if p.ExitRound < 1 {
		return fmt.Errorf("exit round %d must be at least 1", p.ExitRound)
	}
	return nil
}

// TargetMetric is a stop condition on the round's aggregated client metric:
// clients report metrics with their update (Go clients: Update.Metrics,
// measured on their own held-out data for the weights they send); the
// round's value of a metric is their mean weighted by num_samples (the plain
// mean when every weight is zero) over the contributors that reported it.
type TargetMetric struct {
	Name string
	// AtMost selects "<=" (a loss); otherwise the target is ">=" (an
	// accuracy).
	AtMost bool
	Value  float64
}

// ParseTargetMetric reads "name>=value" or "name<=value".
func ParseTargetMetric(spec string) (*TargetMetric, error) {
	for _, op := range []string{">=", "<="} {
		name, value, found := strings.Cut(spec, op)
		if !found {
			continue
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("target metric %q has no metric name", spec)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("target metric %q: %q is not a finite number", spec, value)
		}
		return &TargetMetric{Name: name, AtMost: op == "<=", Value: v}, nil
	}
	return nil, errors.New("target metric " + strconv.Quote(spec) + " must look like name>=value or name<=value")
}

func (t *TargetMetric) String() string {
	if t == nil {
		return "none"
	}
	op := ">="
	if t.AtMost {
		op = "<="
	}
	return t.Name + op + strconv.FormatFloat(t.Value, 'g', -1, 64)
}

// Reached reports whether metrics meet the target.
func (t *TargetMetric) Reached(metrics map[string]float64) bool {
	v, ok := metrics[t.Name]
	if !ok {
		return false
	}
	if t.AtMost {
		return v <= t.Value
	}
	return v >= t.Value
}

// metricMean accumulates the sample-weighted mean of each metric.
type metricMean struct {
	weighted, plain map[string]float64
	samples, count  map[string]float64
}

func (m *metricMean) add(metrics map[string]float64, numSamples int) {
	if len(metrics) == 0 {
		return
	}
	if m.weighted == nil {
		m.weighted, m.plain, m.samples, m.count = map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	}
	for name, v := range metrics {
		m.weighted[name] += float64(numSamples) * v
		m.plain[name] += v
		m.samples[name] += float64(numSamples)
		m.count[name]++
	}
}

func (m *metricMean) result() map[string]float64 {
	if len(m.count) == 0 {
		return nil
	}
	out := make(map[string]float64, len(m.count))
	for name, n := range m.count {
		if m.samples[name] > 0 {
			out[name] = m.weighted[name] / m.samples[name]
		} else {
			out[name] = m.plain[name] / n
		}
	}
	return out
}
