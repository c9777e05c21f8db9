package multiedge

import "math"

// Tracker follows detections within one camera: each track predicts its next box from its last
// velocity, detections are assigned to predictions by IoU (Hungarian), unmatched detections start
// tracks and tracks unmatched for more than MaxAge frames end. Track numbers start at 1 and are
// never reused.
type Tracker struct {
	// MaxAge is how many frames a track survives without a detection.
	MaxAge int
	// MinIoU is the least overlap between a prediction and a detection to pair them.
	MinIoU float64

	tracks []*track
	next   int
}

type track struct {
	id     int
	box    Box
	vx, vy float64
	missed int
}

// TrackedBox is a detection with the track it belongs to.
type TrackedBox struct {
	Track int
	Box   Box
}

func (t *track) predicted() Box {
	steps := float64(t.missed + 1)
	return Box{
		X: t.box.X + int(math.Round(t.vx*steps)),
		Y: t.box.Y + int(math.Round(t.vy*steps)),
		W: t.box.W, H: t.box.H,
	}
}

// StartAfter makes new tracks number from n+1: a restarted worker continues its numbering so
// that its new tracks are not mistaken for the tracks of its previous life.
func (tr *Tracker) StartAfter(n int) {
	tr.next = max(tr.next, n)
}

// Update consumes one frame's detections and returns them with their tracks, in input order.
func (tr *Tracker) Update(detections []Box) []TrackedBox {
	cost := make([][]float64, len(detections))
	for i, detection := range detections {
		cost[i] = make([]float64, len(tr.tracks))
		for j, t := range tr.tracks {
			iou := detection.IoU(t.predicted())
			if iou < tr.MinIoU {
				cost[i][j] = math.Inf(1)
			} else {
				cost[i][j] = 1 - iou
			}
		}
	}
	assigned := make([]int, len(detections))
	for i := range assigned {
		assigned[i] = -1
	}
	if len(tr.tracks) > 0 {
		assigned = Assign(cost)
	}
	matched := make([]bool, len(tr.tracks))
	out := make([]TrackedBox, len(detections))
	for i, detection := range detections {
		if j := assigned[i]; j >= 0 {
			t := tr.tracks[j]
			steps := float64(t.missed + 1)
			vx := float64(detection.X+detection.W/2-(t.box.X+t.box.W/2)) / steps
			vy := float64(detection.Y+detection.H-(t.box.Y+t.box.H)) / steps
			t.vx, t.vy = 0.5*t.vx+0.5*vx, 0.5*t.vy+0.5*vy
			t.box, t.missed = detection, 0
			matched[j] = true
			out[i] = TrackedBox{Track: t.id, Box: detection}
			continue
		}
		tr.next++
		tr.tracks = append(tr.tracks, &track{id: tr.next, box: detection})
		matched = append(matched, true)
		out[i] = TrackedBox{Track: tr.next, Box: detection}
	}
	alive := tr.tracks[:0]
	for j, t := range tr.tracks {
		if !matched[j] {
			t.missed++
		}
		if t.missed <= tr.MaxAge {
			alive = append(alive, t)
		}
	}
	tr.tracks = alive
	return out
}
