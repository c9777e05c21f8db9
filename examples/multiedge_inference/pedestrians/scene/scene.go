// Package scene generates the pedestrian example's world: people with distinct clothing walking
// along a corridor watched by non-overlapping cameras, rendered to RGB frames with ground truth
// (who is where, how much of them is visible). Everything follows from the seed; nothing is
// downloaded.
package scene

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

// Frame geometry and world layout.
const (
	ImageWidth  = 160
	ImageHeight = 96
	// CameraSpan is how much corridor (world units) one camera sees; CameraGap is the unwatched
	// stretch between two cameras.
	CameraSpan = 100.0
	CameraGap  = 30.0
	// DepthRange is the corridor's depth (world units); depth 0 is far from the cameras.
	DepthRange    = 40.0
	pixelsPerUnit = ImageWidth / CameraSpan
	horizonRow    = 50
	// MinVisibility is the least visible fraction of a person that counts as ground truth.
	MinVisibility = 0.35
)

// Config chooses the scene.
type Config struct {
	Seed    uint64
	People  int
	Frames  int
	Cameras int
}

// DefaultConfig is the example's scene: small enough that the whole pipeline runs in seconds.
func DefaultConfig() Config { return Config{Seed: 1, People: 10, Frames: 240, Cameras: 3} }

// Validate checks the bounds the renderer assumes.
func (c Config) Validate() error {
	switch {
	case c.People < 1 || c.People > 64:
		return fmt.Errorf("people %d must be in [1, 64]", c.People)
	case c.Frames < 1 || c.Frames > 100000:
		return fmt.Errorf("frames %d must be in [1, 100000]", c.Frames)
	case c.Cameras < 1 || c.Cameras > 8:
		return fmt.Errorf("cameras %d must be in [1, 8]", c.Cameras)
	}
	return nil
}

// Texture of a shirt.
type Texture int

// Shirt textures.
const (
	Plain Texture = iota
	HorizontalStripes
	VerticalStripes
	Checks
)

type point struct{ x, y float64 }

// Person is one pedestrian: appearance and path.
type Person struct {
	ID       int
	Shirt    [3]uint8
	Trousers [3]uint8
	Texture  Texture
	// Size is the person's height in pixels at mid depth.
	Size  float64
	Start int
	Speed float64
	path  []point
}

// Scene is a generated world.
type Scene struct {
	Config  Config
	People  []Person
	pillars []int
	// positions[frame][person]; present false when the person is not in the corridor.
	positions [][]position
}

type position struct {
	x, y    float64
	present bool
}

// CameraName names camera index c.
func CameraName(c int) string { return fmt.Sprintf("camera-%d", c) }

// New generates the scene for cfg.
func New(cfg Config) (*Scene, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scene config: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5ed7a))
	length := float64(cfg.Cameras)*(CameraSpan+CameraGap) - CameraGap
	s := &Scene{Config: cfg}
	hueOffset := rng.Float64() * 360
	for i := 0; i < cfg.People; i++ {
		shirtHue := math.Mod(hueOffset+float64(i)*360/float64(cfg.People)+rng.Float64()*12, 360)
		person := Person{
			ID:       i + 1,
			Shirt:    hsvToRGB(shirtHue, 0.65+0.3*rng.Float64(), 0.6+0.35*rng.Float64()),
			Trousers: hsvToRGB(rng.Float64()*360, 0.5+0.4*rng.Float64(), 0.35+0.3*rng.Float64()),
			Texture:  Texture(rng.IntN(4)),
			Size:     26 + 10*rng.Float64(),
			Start:    rng.IntN(max(1, cfg.Frames*6/10)),
			Speed:    1.4 + 1.2*rng.Float64(),
		}
		// Enter from one end, wander through two or three points (turning back re-enters a
		// camera), and leave through an end.
		fromLeft := rng.IntN(2) == 0
		entry, exit := -12.0, length+12
		if !fromLeft {
			entry, exit = exit, entry
		}
		if rng.IntN(3) == 0 {
			exit = entry
		}
		person.path = append(person.path, point{entry, rng.Float64() * DepthRange})
		for k, stops := 0, 2+rng.IntN(2); k < stops; k++ {
			person.path = append(person.path, point{rng.Float64() * length, rng.Float64() * DepthRange})
		}
		person.path = append(person.path, point{exit, rng.Float64() * DepthRange})
		s.People = append(s.People, person)
	}
	for c := 0; c < cfg.Cameras; c++ {
		s.pillars = append(s.pillars, 30+rng.IntN(ImageWidth-60))
	}
	s.positions = make([][]position, cfg.Frames)
	for t := range s.positions {
		s.positions[t] = make([]position, len(s.People))
		for i := range s.People {
			s.positions[t][i] = s.People[i].at(t)
		}
	}
	return s, nil
}

func (p *Person) at(frame int) position {
	if frame < p.Start {
		return position{}
	}
	remaining := float64(frame-p.Start) * p.Speed
	for k := 1; k < len(p.path); k++ {
		from, to := p.path[k-1], p.path[k]
		leg := math.Hypot(to.x-from.x, to.y-from.y)
		if remaining <= leg {
			f := remaining / leg
			return position{x: from.x + f*(to.x-from.x), y: from.y + f*(to.y-from.y), present: true}
		}
		remaining -= leg
	}
	return position{}
}

// GroundTruth is one person visible in a camera frame.
type GroundTruth struct {
	Person     int
	Box        multiedge.Box
	Visibility float64
}

// Background renders camera c's empty scene (with its own sensor noise), the detector's reference.
func (s *Scene) Background(c int) *multiedge.Image {
	img := s.emptyScene(c)
	addNoise(img, s.noiseRNG(c, -1))
	return img
}

func (s *Scene) noiseRNG(c, frame int) *rand.Rand {
	return rand.New(rand.NewPCG(s.Config.Seed, uint64(c+1)<<32|uint64(uint32(frame))))
}

func (s *Scene) emptyScene(c int) *multiedge.Image {
	img := multiedge.NewImage(ImageWidth, ImageHeight)
	for y := 0; y < ImageHeight; y++ {
		var v uint8
		if y < horizonRow-10 {
			v = uint8(150 + y/4) // wall
		} else {
			v = uint8(90 + (y - horizonRow + 10)) // floor, lighter towards the camera
		}
		for x := 0; x < ImageWidth; x++ {
			img.Set(x, y, v, v+2, v+4)
		}
	}
	s.drawPillar(img, nil, c)
	return img
}

// drawPillar paints camera c's pillar, which stands in front of everyone.
func (s *Scene) drawPillar(img *multiedge.Image, owner []int, c int) {
	for y := 20; y < ImageHeight; y++ {
		for x := s.pillars[c]; x < s.pillars[c]+9 && x < ImageWidth; x++ {
			img.Set(x, y, 105, 100, 98)
			if owner != nil {
				owner[y*ImageWidth+x] = -2
			}
		}
	}
}

// Render draws camera c at frame and returns the frame and its ground truth (people at least
// MinVisibility visible, with the box of their visible pixels), ordered by person.
func (s *Scene) Render(c, frame int) (*multiedge.Image, []GroundTruth) {
	return s.render(c, frame, true)
}

// GroundTruth is Render's ground truth without the cost of the frame's sensor noise.
func (s *Scene) GroundTruth(c, frame int) []GroundTruth {
	_, truth := s.render(c, frame, false)
	return truth
}

func (s *Scene) render(c, frame int, noise bool) (*multiedge.Image, []GroundTruth) {
	img := s.emptyScene(c)
	owner := make([]int, ImageWidth*ImageHeight)
	for i := range owner {
		owner[i] = -1
	}
	x0 := float64(c) * (CameraSpan + CameraGap)
	type drawn struct {
		person int
		depth  float64
	}
	var order []drawn
	for i, pos := range s.positions[frame] {
		if pos.present && pos.x > x0-15 && pos.x < x0+CameraSpan+15 {
			order = append(order, drawn{i, pos.y})
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return order[a].depth < order[b].depth })
	total := map[int]int{}
	for _, d := range order {
		pos := s.positions[frame][d.person]
		total[d.person] = s.drawPerson(img, owner, d.person, (pos.x-x0)*pixelsPerUnit, float64(horizonRow)+pos.y, frame)
	}
	s.drawPillar(img, owner, c)
	if noise {
		addNoise(img, s.noiseRNG(c, frame))
	}
	var truth []GroundTruth
	for _, d := range order {
		visible, x0, y0, x1, y1 := 0, ImageWidth, ImageHeight, -1, -1
		for i, o := range owner {
			if o != d.person {
				continue
			}
			visible++
			x, y := i%ImageWidth, i/ImageWidth
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
		}
		if total[d.person] == 0 {
			continue
		}
		visibility := float64(visible) / float64(total[d.person])
		if visibility < MinVisibility {
			continue
		}
		truth = append(truth, GroundTruth{
			Person:     s.People[d.person].ID,
			Box:        multiedge.Box{X: x0, Y: y0, W: x1 - x0 + 1, H: y1 - y0 + 1},
			Visibility: visibility,
		})
	}
	sort.Slice(truth, func(a, b int) bool { return truth[a].Person < truth[b].Person })
	return img, truth
}

// drawPerson paints person i with feet at (footX, footY) and returns how many pixels the figure
// has, including those outside the frame.
func (s *Scene) drawPerson(img *multiedge.Image, owner []int, i int, footX, footY float64, frame int) int {
	p := &s.People[i]
	height := p.Size * (0.75 + 0.5*(footY-horizonRow)/DepthRange)
	width := height * 0.36
	top := footY - height
	left := footX - width/2
	count := 0
	skin := [3]uint8{172, 152, 140}
	shade := func(c [3]uint8, f float64) [3]uint8 {
		return [3]uint8{uint8(float64(c[0]) * f), uint8(float64(c[1]) * f), uint8(float64(c[2]) * f)}
	}
	swing := 0
	if (frame/4)%2 == 0 {
		swing = 1
	}
	for py := int(math.Floor(top)); py < int(math.Ceil(footY)); py++ {
		rel := (float64(py) - top) / height
		for px := int(math.Floor(left)); px < int(math.Ceil(left+width)); px++ {
			relX := (float64(px) - left) / width
			var colour [3]uint8
			switch {
			case rel < 0.18:
				// Head: an ellipse in the middle of the top.
				dx, dy := (relX-0.5)/0.3, (rel-0.09)/0.09
				if dx*dx+dy*dy > 1 {
					continue
				}
				colour = skin
			case rel < 0.58:
				colour = p.Shirt
				row, col := int(float64(py)-top), px-int(math.Floor(left))
				switch p.Texture {
				case HorizontalStripes:
					if (row/3)%2 == 1 {
						colour = shade(p.Shirt, 0.5)
					}
				case VerticalStripes:
					if (col/2)%2 == 1 {
						colour = shade(p.Shirt, 0.5)
					}
				case Checks:
					if (row/3+col/3)%2 == 1 {
						colour = shade(p.Shirt, 0.5)
					}
				}
			default:
				// Two legs with a gap that swings as the person walks.
				gap := 0.4 + 0.05*float64(swing)
				if relX > gap && relX < 1-gap {
					continue
				}
				colour = p.Trousers
			}
			count++
			if px < 0 || py < 0 || px >= ImageWidth || py >= ImageHeight {
				continue
			}
			img.Set(px, py, colour[0], colour[1], colour[2])
			owner[py*ImageWidth+px] = i
		}
	}
	return count
}

// QueryImages are photos of person id alone (as a witness would supply): rendered at other
// places than in the corridor, cropped to the person.
func (s *Scene) QueryImages(id int) []multiedge.Image {
	var out []multiedge.Image
	for k, depth := range []float64{8, 30} {
		img := s.emptyScene(0)
		owner := make([]int, ImageWidth*ImageHeight)
		for i := range owner {
			owner[i] = -1
		}
		s.drawPerson(img, owner, id-1, 40+float64(k)*60, float64(horizonRow)+depth, k*4)
		addNoise(img, s.noiseRNG(99, k))
		x0, y0, x1, y1 := ImageWidth, ImageHeight, -1, -1
		for i, o := range owner {
			if o == id-1 {
				x, y := i%ImageWidth, i/ImageWidth
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
		}
		if crop := img.Crop(multiedge.Box{X: x0, Y: y0, W: x1 - x0 + 1, H: y1 - y0 + 1}); crop != nil {
			out = append(out, *crop)
		}
	}
	return out
}

func addNoise(img *multiedge.Image, rng *rand.Rand) {
	for i, v := range img.RGB {
		n := int(v) + rng.IntN(13) - 6
		img.RGB[i] = uint8(min(max(n, 0), 255))
	}
}

func hsvToRGB(h, s, v float64) [3]uint8 {
	c := v * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := v - c
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	return [3]uint8{uint8((r + m) * 255), uint8((g + m) * 255), uint8((b + m) * 255)}
}
