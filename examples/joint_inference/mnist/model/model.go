package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Image geometry and class count of MNIST.
const (
	Side    = 28
	Pixels  = Side * Side
	Classes = 10
)

// Arch is an architecture: average pooling of the 28x28 input by Pool (1 =
// none), then an optional ReLU hidden layer of Hidden units (0 = none, which
// makes the model a softmax regression), then a softmax over the 10 classes.
type Arch struct {
	Pool   int
	Hidden int
}

// Architectures used by the example.
var (
	// EdgeArch is deliberately weak: a linear model on a 14x14 thumbnail.
	EdgeArch = Arch{Pool: 2}
	// CloudArch sees every pixel and has a hidden layer.
	CloudArch = Arch{Pool: 1, Hidden: 256}
)

// String is the name written in model files: "softmax-pool2" or
// "mlp-pool1-h128".
func (a Arch) String() string {
	if a.Hidden == 0 {
		return fmt.Sprintf("softmax-pool%d", a.Pool)
	}
	return fmt.Sprintf("mlp-pool%d-h%d", a.Pool, a.Hidden)
}

// ParseArch is the inverse of Arch.String.
func ParseArch(name string) (Arch, error) {
	parts := strings.Split(name, "-")
	var arch Arch
	var err error
	switch {
	case len(parts) == 2 && parts[0] == "softmax":
		arch.Pool, err = numberAfter(parts[1], "pool")
	case len(parts) == 3 && parts[0] == "mlp":
		arch.Pool, err = numberAfter(parts[1], "pool")
		if err == nil {
			arch.Hidden, err = numberAfter(parts[2], "h")
			if err == nil && arch.Hidden == 0 {
				err = errors.New("an mlp needs at least one hidden unit")
			}
		}
	default:
		err = errors.New(`want "softmax-pool<P>" or "mlp-pool<P>-h<H>"`)
	}
	if err == nil {
		err = arch.validate()
	}
	if err != nil {
		return Arch{}, fmt.Errorf("architecture %q: %w", name, err)
	}
	return arch, nil
}

func numberAfter(part, prefix string) (int, error) {
	digits, ok := strings.CutPrefix(part, prefix)
	if !ok {
		return 0, fmt.Errorf("%q does not start with %q", part, prefix)
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", part, err)
	}
	return n, nil
}

func (a Arch) validate() error {
	switch a.Pool {
	case 1, 2, 4, 7:
	default:
		return fmt.Errorf("pool %d does not divide %d (use 1, 2, 4 or 7)", a.Pool, Side)
	}
	if a.Hidden < 0 || a.Hidden > 4096 {
		return fmt.Errorf("hidden size %d is outside [0,4096]", a.Hidden)
	}
	return nil
}

// Inputs is the number of features after pooling.
func (a Arch) Inputs() int { return (Side / a.Pool) * (Side / a.Pool) }

// layerShapes lists (inputs, outputs) of each dense layer.
func (a Arch) layerShapes() [][2]int {
	if a.Hidden == 0 {
		return [][2]int{{a.Inputs(), Classes}}
	}
	return [][2]int{{a.Inputs(), a.Hidden}, {a.Hidden, Classes}}
}

// layer is a dense layer: out = in·W + B, W row-major inputs x outputs.
type layer struct {
	in, out int
	W       []float64
	B       []float64
}

// Model is a trained or freshly initialised classifier. Predict is safe for
// concurrent use; Train is not, and must not run alongside Predict.
type Model struct {
	arch   Arch
	layers []layer
}

// New returns a model with He-initialised weights drawn from seed.
func New(arch Arch, seed uint64) (*Model, error) {
	if err := arch.validate(); err != nil {
		return nil, fmt.Errorf("creating model %s: %w", arch, err)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	m := &Model{arch: arch}
	for _, shape := range arch.layerShapes() {
		l := layer{in: shape[0], out: shape[1], W: make([]float64, shape[0]*shape[1]), B: make([]float64, shape[1])}
		scale := math.Sqrt(2 / float64(l.in))
		for i := range l.W {
			l.W[i] = rng.NormFloat64() * scale
		}
		m.layers = append(m.layers, l)
	}
	return m, nil
}

// Arch returns the model's architecture.
func (m *Model) Arch() Arch { return m.arch }

// Prediction is a classification as the workers put it on the wire.
type Prediction struct {
	Label int       `json:"label"`
	Probs []float64 `json:"probs"`
}

// CheckImage validates one image: Pixels values, each finite and in [0,1].
func CheckImage(pixels []float64) error {
	if len(pixels) != Pixels {
		return fmt.Errorf("image has %d pixels, want %d (a flat 28x28 array)", len(pixels), Pixels)
	}
	for i, p := range pixels {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("pixel %d is %v, want a number in [0,1]", i, p)
		}
	}
	return nil
}

// Predict classifies one image of Pixels values in [0,1] (row-major).
func (m *Model) Predict(pixels []float64) (Prediction, error) {
	if err := CheckImage(pixels); err != nil {
		return Prediction{}, err
	}
	features := make([]float64, m.arch.Inputs())
	pool(pixels, m.arch.Pool, features)
	probs := m.forward(features)
	return Prediction{Label: argmax(probs), Probs: probs}, nil
}

// forward runs the layers on one feature vector and returns probabilities.
func (m *Model) forward(features []float64) []float64 {
	activations := features
	for index, l := range m.layers {
		out := append([]float64(nil), l.B...)
		for i, x := range activations {
			if x == 0 {
				continue
			}
			row := l.W[i*l.out : (i+1)*l.out]
			for j, w := range row {
				out[j] += x * w
			}
		}
		if index < len(m.layers)-1 {
			for j := range out {
				out[j] = max(out[j], 0)
			}
		}
		activations = out
	}
	softmaxInPlace(activations)
	return activations
}

// pool averages pool x pool blocks of a 28x28 image into out.
func pool(pixels []float64, size int, out []float64) {
	if size == 1 {
		copy(out, pixels)
		return
	}
	side := Side / size
	norm := 1 / float64(size*size)
	for by := 0; by < side; by++ {
		for bx := 0; bx < side; bx++ {
			var sum float64
			for y := by * size; y < (by+1)*size; y++ {
				for x := bx * size; x < (bx+1)*size; x++ {
					sum += pixels[y*Side+x]
				}
			}
			out[by*side+bx] = sum * norm
		}
	}
}

func softmaxInPlace(values []float64) {
	peak := math.Inf(-1)
	for _, v := range values {
		peak = max(peak, v)
	}
	var total float64
	for i, v := range values {
		values[i] = math.Exp(v - peak)
		total += values[i]
	}
	for i := range values {
		values[i] /= total
	}
}

func argmax(values []float64) int {
	best := 0
	for i, v := range values {
		if v > values[best] {
			best = i
		}
	}
	return best
}
