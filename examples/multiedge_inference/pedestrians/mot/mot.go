// Package mot computes the standard multi-object tracking metrics: CLEAR-MOT (MOTA, MOTP, ID
// switches; Bernardin and Stiefelhagen 2008) and the identity metrics IDF1/IDP/IDR (Ristani et
// al. 2016), over frames of one or several cameras. With several cameras, frames are evaluated in
// time order and a person keeps one ground-truth identity across cameras, so a tracker that gives
// a person a new identity in the next camera pays an ID switch: the multi-camera (MTMC) reading.
package mot

import (
	"math"
	"sort"

	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

// Object is a box with an identity.
type Object struct {
	ID  int
	Box multiedge.Box
}

// Frame is what one camera saw at one time: ground truth and hypotheses. Objects match only
// within a frame.
type Frame struct {
	Camera string
	Time   int
	Truth  []Object
	Hyps   []Object
}

// Result holds the metrics and their counts.
type Result struct {
	Truths, Hyps          int
	Matches, FP, FN, IDSW int
	// MOTA = 1 - (FN + FP + IDSW) / Truths; MOTP is the mean IoU of matches.
	MOTA, MOTP float64
	// IDTP, IDFP, IDFN and the identity F1, precision and recall.
	IDTP, IDFP, IDFN int
	IDF1, IDP, IDR   float64
	// Switches lists the ID switches in order.
	Switches []Switch `json:"-"`
}

// Switch is one ID switch: the truth's hypothesis changed from From to To.
type Switch struct {
	Camera      string
	Time, Truth int
	From, To    int
}

// Evaluate scores frames with IoU ≥ threshold as a match (0.5 is the usual value). The frames'
// order does not matter; they are sorted by time, then camera.
func Evaluate(frames []Frame, threshold float64) Result {
	ordered := append([]Frame(nil), frames...)
	sort.SliceStable(ordered, func(a, b int) bool {
		if ordered[a].Time != ordered[b].Time {
			return ordered[a].Time < ordered[b].Time
		}
		return ordered[a].Camera < ordered[b].Camera
	})
	var r Result
	var iouSum float64
	// previous: the hypothesis a truth was matched to in the last frame it appeared in (kept if
	// still valid, CLEAR-MOT's first step); lastMatch: the hypothesis it was last matched to at
	// all (a different one now is an ID switch).
	previous, lastMatch := map[int]int{}, map[int]int{}
	overlap := map[[2]int]int{}
	truthIDs, hypIDs := map[int]bool{}, map[int]bool{}
	for _, frame := range ordered {
		r.Truths += len(frame.Truth)
		r.Hyps += len(frame.Hyps)
		for _, truth := range frame.Truth {
			truthIDs[truth.ID] = true
			for _, hyp := range frame.Hyps {
				if truth.Box.IoU(hyp.Box) >= threshold {
					overlap[[2]int{truth.ID, hyp.ID}]++
				}
			}
		}
		for _, hyp := range frame.Hyps {
			hypIDs[hyp.ID] = true
		}
		matchedTruth := make([]int, len(frame.Truth))
		hypUsed := make([]bool, len(frame.Hyps))
		for i := range matchedTruth {
			matchedTruth[i] = -1
		}
		for i, truth := range frame.Truth {
			want, ok := previous[truth.ID]
			if !ok {
				continue
			}
			for j, hyp := range frame.Hyps {
				if hyp.ID == want && !hypUsed[j] && truth.Box.IoU(hyp.Box) >= threshold {
					matchedTruth[i], hypUsed[j] = j, true
					break
				}
			}
		}
		var freeTruth, freeHyp []int
		for i := range frame.Truth {
			if matchedTruth[i] < 0 {
				freeTruth = append(freeTruth, i)
			}
		}
		for j := range frame.Hyps {
			if !hypUsed[j] {
				freeHyp = append(freeHyp, j)
			}
		}
		if len(freeTruth) > 0 && len(freeHyp) > 0 {
			cost := make([][]float64, len(freeTruth))
			for a, i := range freeTruth {
				cost[a] = make([]float64, len(freeHyp))
				for b, j := range freeHyp {
					if iou := frame.Truth[i].Box.IoU(frame.Hyps[j].Box); iou >= threshold {
						cost[a][b] = 1 - iou
					} else {
						cost[a][b] = math.Inf(1)
					}
				}
			}
			for a, b := range multiedge.Assign(cost) {
				if b >= 0 {
					matchedTruth[freeTruth[a]], hypUsed[freeHyp[b]] = freeHyp[b], true
				}
			}
		}
		for i, truth := range frame.Truth {
			j := matchedTruth[i]
			if j < 0 {
				r.FN++
				delete(previous, truth.ID)
				continue
			}
			hyp := frame.Hyps[j]
			r.Matches++
			iouSum += truth.Box.IoU(hyp.Box)
			if last, ok := lastMatch[truth.ID]; ok && last != hyp.ID {
				r.IDSW++
				r.Switches = append(r.Switches, Switch{Camera: frame.Camera, Time: frame.Time, Truth: truth.ID, From: last, To: hyp.ID})
			}
			lastMatch[truth.ID], previous[truth.ID] = hyp.ID, hyp.ID
		}
		for j := range frame.Hyps {
			if !hypUsed[j] {
				r.FP++
			}
		}
	}
	if r.Truths > 0 {
		r.MOTA = 1 - float64(r.FN+r.FP+r.IDSW)/float64(r.Truths)
	}
	if r.Matches > 0 {
		r.MOTP = iouSum / float64(r.Matches)
	}
	r.IDTP = bestIdentityMatching(truthIDs, hypIDs, overlap)
	r.IDFN, r.IDFP = r.Truths-r.IDTP, r.Hyps-r.IDTP
	if r.Truths+r.Hyps > 0 {
		r.IDF1 = 2 * float64(r.IDTP) / float64(r.Truths+r.Hyps)
	}
	if r.Hyps > 0 {
		r.IDP = float64(r.IDTP) / float64(r.Hyps)
	}
	if r.Truths > 0 {
		r.IDR = float64(r.IDTP) / float64(r.Truths)
	}
	return r
}

// bestIdentityMatching pairs truth and hypothesis identities one-to-one so that the number of
// frames in which paired identities overlap is largest, and returns that number (IDTP).
func bestIdentityMatching(truthIDs, hypIDs map[int]bool, overlap map[[2]int]int) int {
	truths, hyps := sortedKeys(truthIDs), sortedKeys(hypIDs)
	if len(truths) == 0 || len(hyps) == 0 {
		return 0
	}
	cost := make([][]float64, len(truths))
	for a, truth := range truths {
		cost[a] = make([]float64, len(hyps))
		for b, hyp := range hyps {
			cost[a][b] = -float64(overlap[[2]int{truth, hyp}])
		}
	}
	total := 0
	for a, b := range multiedge.Assign(cost) {
		if b >= 0 {
			total += overlap[[2]int{truths[a], hyps[b]}]
		}
	}
	return total
}

func sortedKeys(set map[int]bool) []int {
	keys := make([]int, 0, len(set))
	for key := range set {
		keys = append(keys, key)
	}
	sort.Ints(keys)
	return keys
}

// Percentile returns the p-th percentile (0..100, nearest rank) of values; 0 when empty.
func Percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
