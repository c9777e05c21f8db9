package hem

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Inference is what a miner judges: the class probabilities of a classifier
// and/or the boxes of a detector. Miners read the part they understand.
type Inference struct {
	// Probabilities are per-class scores in [0,1].
	Probabilities []float64
	// Boxes are detections.
	Boxes []Box
}

// Box is one detection, upstream's [x1, y1, x2, y2, score, label].
type Box struct {
	X1, Y1, X2, Y2 float64
	Score          float64
	Label          int
}

// BoxFromRow converts upstream's list form. Upstream requires more than four
// elements; a missing label is allowed and becomes 0.
func BoxFromRow(row []float64) (Box, error) {
	if len(row) < 5 {
		return Box{}, fmt.Errorf("%w: box %v has %d values, want [x1,y1,x2,y2,score(,label)]", ErrInvalidInference, row, len(row))
	}
	box := Box{X1: row[0], Y1: row[1], X2: row[2], Y2: row[3], Score: row[4]}
	if len(row) > 5 {
		box.Label = int(row[5])
	}
	return box, nil
}

// Miner decides whether one inference is a hard example. Implementations must
// be safe for concurrent use: an edge serves requests in parallel.
type Miner interface {
	IsHard(result Inference) (bool, error)
}

// ErrInvalidInference marks results a miner cannot judge. Upstream quietly
// calls them easy; we report them so a broken model output is noticed.
var ErrInvalidInference = errors.New("invalid inference result")

// Upstream names (HEM_NAME values).
const (
	NameIBT          = "IBT"
	NameCrossEntropy = "CrossEntropy"
	NameThreshold    = "Threshold"
	NameRandom       = "Random"
	NameCloudOnly    = "CloudOnly"
	NameEdgeOnly     = "EdgeOnly"
)

// Factory builds a miner from upstream's string parameters.
type Factory func(params map[string]string) (Miner, error)

// Registry maps upstream names to factories. It is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewRegistry returns a registry holding the built-in algorithms.
// BertRouter is absent: it needs a PyTorch model and has no Go equivalent.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{
		NameIBT:          newIBTFromParams,
		NameCrossEntropy: newCrossEntropyFromParams,
		NameThreshold:    newThresholdFromParams,
		NameRandom:       newRandomFromParams,
		NameCloudOnly:    newConstantFromParams(true),
		NameEdgeOnly:     newConstantFromParams(false),
	}}
}

// Register adds a custom algorithm. Replacing an existing name is refused so
// that a custom miner cannot silently shadow a built-in one.
func (r *Registry) Register(name string, factory Factory) error {
	if name == "" || factory == nil {
		return errors.New("registering a hard example miner: name and factory are required")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, exists := r.factories[name]; exists {
		return fmt.Errorf("registering hard example miner %q: the name is taken", name)
	}
	r.factories[name] = factory
	return nil
}

// New builds the miner registered under name (case-sensitive, as upstream).
func (r *Registry) New(name string, params map[string]string) (Miner, error) {
	r.mu.RLock()
	factory, ok := r.factories[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown hard example mining algorithm %q (known: %s)", name, strings.Join(r.Names(), ", "))
	}
	miner, err := factory(params)
	if err != nil {
		return nil, fmt.Errorf("configuring hard example mining algorithm %s: %w", name, err)
	}
	return miner, nil
}

// Names lists the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.factories))
	for name := range r.factories {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// params reads upstream's string parameters. Unknown keys are rejected:
// upstream ignores them, which turns a typo ("threshold_image") into a
// silent use of the default.
type params struct {
	raw  map[string]string
	used map[string]bool
	err  error
}

func newParams(raw map[string]string) *params {
	return &params{raw: raw, used: map[string]bool{}}
}

// unit reads a float in [0,1], or def when absent.
func (p *params) unit(key string, def float64) float64 {
	p.used[key] = true
	raw, ok := p.raw[key]
	if !ok || p.err != nil {
		return def
	}
	value, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil {
		p.err = fmt.Errorf("parameter %s=%q is not a number: %w", key, raw, err)
		return def
	}
	if !(value >= 0 && value <= 1) {
		p.err = fmt.Errorf("parameter %s=%q is outside [0,1]", key, raw)
		return def
	}
	return value
}

// int64 reads an integer, reporting whether it was present.
func (p *params) int64(key string) (int64, bool) {
	p.used[key] = true
	raw, ok := p.raw[key]
	if !ok || p.err != nil {
		return 0, false
	}
	value, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		p.err = fmt.Errorf("parameter %s=%q is not an integer: %w", key, raw, err)
		return 0, false
	}
	return value, true
}

func (p *params) done() error {
	if p.err != nil {
		return p.err
	}
	for key := range p.raw {
		if !p.used[key] {
			known := make([]string, 0, len(p.used))
			for name := range p.used {
				known = append(known, name)
			}
			slices.Sort(known)
			if len(known) == 0 {
				return fmt.Errorf("unknown parameter %s (this algorithm takes none)", key)
			}
			return fmt.Errorf("unknown parameter %s (known: %s)", key, strings.Join(known, ", "))
		}
	}
	return nil
}

// checkScores rejects scores outside [0,1], as upstream's data_check does.
func checkScores(boxes []Box) error {
	for i, box := range boxes {
		if !(box.Score >= 0 && box.Score <= 1) {
			return fmt.Errorf("%w: box %d score %v is outside [0,1]", ErrInvalidInference, i, box.Score)
		}
	}
	return nil
}

// IBT (image-box threshold) calls an image hard when at least
// 1-ThresholdImg of its boxes score at most ThresholdBox.
type IBT struct {
	ThresholdImg float64
	ThresholdBox float64
}

func newIBTFromParams(raw map[string]string) (Miner, error) {
	p := newParams(raw)
	miner := &IBT{ThresholdImg: p.unit("threshold_img", 0.5), ThresholdBox: p.unit("threshold_box", 0.5)}
	return miner, p.done()
}

// IsHard implements Miner. No boxes is easy: there is nothing to doubt.
func (m *IBT) IsHard(result Inference) (bool, error) {
	if len(result.Boxes) == 0 {
		return false, nil
	}
	if err := checkScores(result.Boxes); err != nil {
		return false, err
	}
	low := 0
	for _, box := range result.Boxes {
		if box.Score <= m.ThresholdBox {
			low++
		}
	}
	return float64(low)/float64(len(result.Boxes)) >= 1-m.ThresholdImg, nil
}

// CrossEntropy calls a classification hard when its normalised confidence,
// 1 + Σ p·log p / log n (1 for a one-hot answer, 0 for a uniform one), is
// below Threshold.
type CrossEntropy struct {
	Threshold float64
}

func newCrossEntropyFromParams(raw map[string]string) (Miner, error) {
	p := newParams(raw)
	miner := &CrossEntropy{Threshold: p.unit("threshold_cross_entropy", 0.5)}
	return miner, p.done()
}

// IsHard implements Miner. A zero probability contributes 0 (the limit of
// p·log p); upstream's math.log raises on it instead.
func (m *CrossEntropy) IsHard(result Inference) (bool, error) {
	probs := result.Probabilities
	if len(probs) == 0 {
		return false, nil
	}
	if len(probs) == 1 {
		// log(1) = 0 would divide by zero; one class carries no uncertainty
		// the formula can measure.
		return false, fmt.Errorf("%w: cross entropy needs at least 2 class probabilities, got 1", ErrInvalidInference)
	}
	var sum float64
	for i, prob := range probs {
		if !(prob >= 0 && prob <= 1) {
			return false, fmt.Errorf("%w: class %d probability %v is outside [0,1]", ErrInvalidInference, i, prob)
		}
		if prob > 0 {
			sum += prob * math.Log(prob)
		}
	}
	confidence := 1 + sum/math.Log(float64(len(probs)))
	return confidence < m.Threshold, nil
}

// Threshold calls a detection hard when its mean box score is below
// Threshold.
type Threshold struct {
	Threshold float64
}

func newThresholdFromParams(raw map[string]string) (Miner, error) {
	p := newParams(raw)
	miner := &Threshold{Threshold: p.unit("threshold", 0.5)}
	return miner, p.done()
}

// IsHard implements Miner. Upstream does not range-check scores here; we do,
// as for IBT, because a score outside [0,1] means a broken post-processor.
func (m *Threshold) IsHard(result Inference) (bool, error) {
	if len(result.Boxes) == 0 {
		return false, nil
	}
	if err := checkScores(result.Boxes); err != nil {
		return false, err
	}
	var total float64
	for _, box := range result.Boxes {
		total += box.Score
	}
	return total/float64(len(result.Boxes)) < m.Threshold, nil
}

// Random calls a sample hard with probability Ratio, regardless of content.
type Random struct {
	ratio float64
	mu    sync.Mutex
	rng   *rand.Rand
}

// NewRandom returns a Random miner drawing from a PCG seeded with seed, so
// tests and replays are reproducible.
func NewRandom(ratio float64, seed uint64) *Random {
	return &Random{ratio: ratio, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// newRandomFromParams takes random_ratio and, as our extension, seed; without
// a seed the clock seeds it, like upstream's module-level random.
func newRandomFromParams(raw map[string]string) (Miner, error) {
	p := newParams(raw)
	ratio := p.unit("random_ratio", 0.3)
	seed, ok := p.int64("seed")
	if err := p.done(); err != nil {
		return nil, err
	}
	if !ok {
		seed = time.Now().UnixNano()
	}
	return NewRandom(ratio, uint64(seed)), nil
}

// IsHard implements Miner.
func (m *Random) IsHard(Inference) (bool, error) {
	m.mu.Lock()
	draw := m.rng.Float64()
	m.mu.Unlock()
	return draw < m.ratio, nil
}

// Constant always answers the same: CloudOnly (true) or EdgeOnly (false).
type Constant bool

func newConstantFromParams(hard bool) Factory {
	return func(raw map[string]string) (Miner, error) {
		if err := newParams(raw).done(); err != nil {
			return nil, err
		}
		return Constant(hard), nil
	}
}

// IsHard implements Miner.
func (m Constant) IsHard(Inference) (bool, error) { return bool(m), nil }

var (
	_ Miner = (*IBT)(nil)
	_ Miner = (*CrossEntropy)(nil)
	_ Miner = (*Threshold)(nil)
	_ Miner = (*Random)(nil)
	_ Miner = Constant(false)
)
