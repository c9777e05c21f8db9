package federated

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Limits on what a peer may describe. They bound the work a hostile frame can
// cause before its size limit is reached.
const (
	maxLayers = 1 << 16
	maxRank   = 16
	// maxParams bounds the number of values of one model (2^31: 16 GiB as
	// float64), far above any model this package is meant for.
	maxParams = 1 << 31
)

// Layer is one tensor of a model: its shape and its values in row-major
// order. A scalar has an empty Shape and one value.
type Layer struct {
	Shape  []int
	Values []float64
}

// Weights are a model's layers in the order the framework lists them (what
// upstream's Python clients send as "weights": one nested list per layer).
type Weights []Layer

// NewLayer returns a zero layer of the given shape.
func NewLayer(shape ...int) Layer {
	n := 1
	for _, dim := range shape {
		n *= dim
	}
	return Layer{Shape: slices.Clone(shape), Values: make([]float64, n)}
}

// Clone returns a deep copy.
func (w Weights) Clone() Weights {
	if w == nil {
		return nil
	}
	out := make(Weights, len(w))
	for i, layer := range w {
		out[i] = Layer{Shape: slices.Clone(layer.Shape), Values: slices.Clone(layer.Values)}
	}
	return out
}

// NumParams is the number of values over all layers.
func (w Weights) NumParams() int {
	n := 0
	for _, layer := range w {
		n += len(layer.Values)
	}
	return n
}

// Validate checks that every layer holds as many values as its shape says.
func (w Weights) Validate() error {
	if len(w) > maxLayers {
		return fmt.Errorf("%d layers, more than the limit of %d", len(w), maxLayers)
	}
	for i, layer := range w {
		n, err := shapeSize(layer.Shape)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if n != len(layer.Values) {
			return fmt.Errorf("layer %d: shape %v needs %d values, has %d", i, layer.Shape, n, len(layer.Values))
		}
	}
	return nil
}

// SameShapes reports whether two models have the same layer shapes; the error
// names the first difference.
func SameShapes(a, b Weights) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d layers, expected %d", len(a), len(b))
	}
	for i := range a {
		if !slices.Equal(a[i].Shape, b[i].Shape) {
			return fmt.Errorf("layer %d has shape %v, expected %v", i, a[i].Shape, b[i].Shape)
		}
	}
	return nil
}

func shapeSize(shape []int) (int, error) {
	if len(shape) > maxRank {
		return 0, fmt.Errorf("rank %d is above the limit of %d", len(shape), maxRank)
	}
	n := 1
	for _, dim := range shape {
		if dim < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if dim != 0 && n > maxParams/dim {
			return 0, fmt.Errorf("shape %v has more than %d values", shape, maxParams)
		}
		n *= dim
	}
	return n, nil
}

func checkFinite(w Weights) error {
	for i, layer := range w {
		for j, v := range layer.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("layer %d value %d is %v: weights must be finite", i, j, v)
			}
		}
	}
	return nil
}

// appendPythonFloat writes f the way Python's json.dumps does (repr): the
// shortest round-trip digits, always with a fraction or an exponent, the
// exponent form below 1e-4 and from 1e16 on. Writing "1.0" rather than Go's
// "1" keeps numpy from turning an all-integral layer into an integer array.
func appendPythonFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	if abs := math.Abs(f); abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	if !slices.Contains(b[start:], '.') {
		b = append(b, ".0"...)
	}
	return b
}

// appendJSONWeights writes w as upstream's "weights": a JSON list with one
// nested list (or a number, for a scalar) per layer.
func appendJSONWeights(b []byte, w Weights) []byte {
	if w == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, layer := range w {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = appendNested(b, layer.Shape, layer.Values)
	}
	return append(b, ']')
}

// appendNested writes values as nested lists of the given shape and returns
// the values it did not consume.
func appendNested(b []byte, shape []int, values []float64) ([]byte, []float64) {
	if len(shape) == 0 {
		return appendPythonFloat(b, values[0]), values[1:]
	}
	b = append(b, '[')
	for i := 0; i < shape[0]; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b, values = appendNested(b, shape[1:], values)
	}
	return append(b, ']'), values
}

// errNotWeights is wrapped by every parse error of a weights list.
var errNotWeights = errors.New("weights must be a JSON list of layers, each a number or a rectangular nested list of numbers")

// parseJSONWeights reads upstream's "weights": a list of layers, each a number
// or a rectangular nested list of numbers. It is a hand-written scanner
// because decoding a million-value model into []any costs ten times the
// memory of the model.
func parseJSONWeights(data []byte) (Weights, error) {
	p := &weightsParser{data: data}
	w, err := p.weights()
	if err != nil {
		return nil, fmt.Errorf("%w: at byte %d: %w", errNotWeights, p.pos, err)
	}
	return w, nil
}

type weightsParser struct {
	data []byte
	pos  int
	// Per layer: the shape seen so far (-1 = not yet known) and the rank
	// (-1 until the first number).
	shape  []int
	rank   int
	values []float64
	total  int
}

func (p *weightsParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *weightsParser) peek() (byte, error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return 0, errors.New("unexpected end")
	}
	return p.data[p.pos], nil
}

func (p *weightsParser) weights() (Weights, error) {
	c, err := p.peek()
	if err != nil {
		return nil, err
	}
	if c != '[' {
		return nil, fmt.Errorf("expected '[', found %q", c)
	}
	p.pos++
	w := Weights{}
	if c, err = p.peek(); err != nil {
		return nil, err
	}
	if c == ']' {
		p.pos++
		return w, p.end()
	}
	for {
		if len(w) >= maxLayers {
			return nil, fmt.Errorf("more than %d layers", maxLayers)
		}
		layer, err := p.layer()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", len(w), err)
		}
		w = append(w, layer)
		if c, err = p.peek(); err != nil {
			return nil, err
		}
		p.pos++
		switch c {
		case ',':
		case ']':
			return w, p.end()
		default:
			return nil, fmt.Errorf("expected ',' or ']' after layer %d, found %q", len(w)-1, c)
		}
	}
}

func (p *weightsParser) end() error {
	p.skipSpace()
	if p.pos != len(p.data) {
		return errors.New("data after the list of layers")
	}
	return nil
}

func (p *weightsParser) layer() (Layer, error) {
	p.shape, p.rank, p.values = p.shape[:0], -1, nil
	if err := p.value(0); err != nil {
		return Layer{}, err
	}
	if p.rank < 0 {
		// Only empty lists: the rank is the depth reached.
		p.rank = len(p.shape)
	}
	shape := make([]int, p.rank)
	for i := range shape {
		if i < len(p.shape) && p.shape[i] >= 0 {
			shape[i] = p.shape[i]
		}
	}
	n, err := shapeSize(shape)
	if err != nil {
		return Layer{}, err
	}
	if n != len(p.values) {
		return Layer{}, fmt.Errorf("nested lists are not rectangular (shape %v, %d values)", shape, len(p.values))
	}
	values := p.values
	if values == nil {
		values = []float64{}
	}
	return Layer{Shape: shape, Values: values}, nil
}

func (p *weightsParser) value(depth int) error {
	c, err := p.peek()
	if err != nil {
		return err
	}
	if c != '[' {
		if p.rank < 0 {
			p.rank = depth
		}
		if depth != p.rank {
			return fmt.Errorf("a number at depth %d, where numbers are at depth %d", depth, p.rank)
		}
		return p.number()
	}
	if p.rank >= 0 && depth >= p.rank {
		return fmt.Errorf("a list at depth %d, where numbers are at depth %d", depth, p.rank)
	}
	if depth >= maxRank {
		return fmt.Errorf("lists nested deeper than %d", maxRank)
	}
	p.pos++
	count := 0
	if c, err = p.peek(); err != nil {
		return err
	}
	if c == ']' {
		p.pos++
	} else {
		for {
			if err := p.value(depth + 1); err != nil {
				return err
			}
			count++
			if c, err = p.peek(); err != nil {
				return err
			}
			p.pos++
			if c == ']' {
				break
			}
			if c != ',' {
				return fmt.Errorf("expected ',' or ']', found %q", c)
			}
		}
	}
	for len(p.shape) <= depth {
		p.shape = append(p.shape, -1)
	}
	switch {
	case p.shape[depth] < 0:
		p.shape[depth] = count
	case p.shape[depth] != count:
		return fmt.Errorf("lists of lengths %d and %d at depth %d: not rectangular", p.shape[depth], count, depth)
	}
	return nil
}

func (p *weightsParser) number() error {
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.pos++
			continue
		}
		break
	}
	if start == p.pos {
		return fmt.Errorf("expected a number, found %q", p.data[p.pos])
	}
	v, err := strconv.ParseFloat(string(p.data[start:p.pos]), 64)
	if err != nil {
		return fmt.Errorf("bad number %q", p.data[start:p.pos])
	}
	if math.IsInf(v, 0) {
		return fmt.Errorf("number %q is out of range", p.data[start:p.pos])
	}
	if p.total >= maxParams {
		return fmt.Errorf("more than %d values", maxParams)
	}
	p.total++
	p.values = append(p.values, v)
	return nil
}
