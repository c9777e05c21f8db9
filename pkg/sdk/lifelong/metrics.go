package lifelong

import (
	"math"
	"slices"
)

// AUROC is the area under the ROC curve of a score meant to be higher for positives (here:
// samples of unseen tasks): the probability that a random positive scores above a random
// negative, ties counting half. NaN when either side is empty.
func AUROC(positives, negatives []float64) float64 {
	if len(positives) == 0 || len(negatives) == 0 {
		return math.NaN()
	}
	type scored struct {
		score    float64
		positive bool
	}
	all := make([]scored, 0, len(positives)+len(negatives))
	for _, s := range positives {
		all = append(all, scored{s, true})
	}
	for _, s := range negatives {
		all = append(all, scored{s, false})
	}
	slices.SortFunc(all, func(a, b scored) int {
		switch {
		case a.score < b.score:
			return -1
		case a.score > b.score:
			return 1
		}
		return 0
	})
	// Mann-Whitney U from mid-ranks.
	var positiveRankSum float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].score == all[i].score {
			j++
		}
		midRank := float64(i+j+1) / 2 // ranks are 1-based: (i+1 + j) / 2
		for k := i; k < j; k++ {
			if all[k].positive {
				positiveRankSum += midRank
			}
		}
		i = j
	}
	np, nn := float64(len(positives)), float64(len(negatives))
	return (positiveRankSum - np*(np+1)/2) / (np * nn)
}

// Detection counts a detector's decisions at a threshold: a sample is flagged when its score is
// above the threshold.
type Detection struct {
	TruePositives, FalsePositives, FalseNegatives, TrueNegatives int
}

// DetectAt counts the decisions at threshold.
func DetectAt(positives, negatives []float64, threshold float64) Detection {
	var d Detection
	for _, s := range positives {
		if s > threshold {
			d.TruePositives++
		} else {
			d.FalseNegatives++
		}
	}
	for _, s := range negatives {
		if s > threshold {
			d.FalsePositives++
		} else {
			d.TrueNegatives++
		}
	}
	return d
}

// Precision is TP/(TP+FP), NaN when nothing was flagged.
func (d Detection) Precision() float64 {
	return ratio(d.TruePositives, d.TruePositives+d.FalsePositives)
}

// Recall is TP/(TP+FN), NaN without positives.
func (d Detection) Recall() float64 {
	return ratio(d.TruePositives, d.TruePositives+d.FalseNegatives)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// AccuracyMatrix holds R[i][j], the accuracy on task j after learning tasks 0..i (i, j in the
// order tasks arrived), and the accuracy of an untrained reference on each task (for forward
// transfer).
type AccuracyMatrix struct {
	R [][]float64
	// Reference[j] is the accuracy on task j of a model that learned nothing of it (a chance
	// or randomly initialised baseline), as in Lopez-Paz and Ranzato's forward transfer.
	Reference []float64
}

// BackwardTransfer is the mean over tasks 0..T-2 of R[T-1][j] - R[j][j]: negative means
// forgetting.
func (m AccuracyMatrix) BackwardTransfer() float64 {
	t := len(m.R)
	if t < 2 {
		return math.NaN()
	}
	var sum float64
	for j := 0; j < t-1; j++ {
		sum += m.R[t-1][j] - m.R[j][j]
	}
	return sum / float64(t-1)
}

// ForwardTransfer is the mean over tasks 1..T-1 of R[j-1][j] - Reference[j]: how much learning
// earlier tasks helps on a task before it is learned.
func (m AccuracyMatrix) ForwardTransfer() float64 {
	t := len(m.R)
	if t < 2 || len(m.Reference) < t {
		return math.NaN()
	}
	var sum float64
	for j := 1; j < t; j++ {
		sum += m.R[j-1][j] - m.Reference[j]
	}
	return sum / float64(t-1)
}

// Forgetting returns, per task j < T-1, R[j][j] - R[T-1][j]: accuracy lost since it was learned.
func (m AccuracyMatrix) Forgetting() []float64 {
	t := len(m.R)
	var lost []float64
	for j := 0; j < t-1; j++ {
		lost = append(lost, m.R[j][j]-m.R[t-1][j])
	}
	return lost
}
