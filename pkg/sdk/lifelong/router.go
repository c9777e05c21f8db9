package lifelong

import (
	"fmt"

	"github.com/sedna-go/sedna/pkg/kb"
)

// Router allocates samples to tasks at inference from an index held in memory (the inference
// worker's cached copy, so it keeps answering while the knowledge base is down).
type Router struct {
	index *kb.Index
	// Margin lets tasks whose score is within (1+Margin) of the best compete on their model's
	// confidence (Allocate with a confidence function); 0 routes by distance alone.
	Margin float64
}

// NewRouter routes with index, which must be valid.
func NewRouter(index *kb.Index) (*Router, error) {
	if index == nil {
		return nil, fmt.Errorf("routing needs an index")
	}
	if err := index.Validate(); err != nil {
		return nil, err
	}
	return &Router{index: index}, nil
}

// Index is the index the router answers from.
func (r *Router) Index() *kb.Index { return r.index }

// Allocation is where one sample went.
type Allocation struct {
	// Match is the index's answer (task or unseen, and the unseen score).
	kb.Match
	// Task is the task whose model serves the sample: Match.Task, or for an unseen sample the
	// nearest task (its best guess until the new task is learned).
	Task string
	// Confidence is what the confidence function said of Task's model, when used.
	Confidence float64
}

// Allocate routes one feature vector. confidence, when not nil, gives the confidence (e.g. the
// maximum softmax probability) of a task's model on the sample; among the tasks within Margin
// of the nearest, the most confident one serves it.
func (r *Router) Allocate(features []float64, confidence func(task string) (float64, error)) (Allocation, error) {
	if len(features) != r.index.Dimension {
		return Allocation{}, fmt.Errorf("the sample has %d features, the index's dimension is %d", len(features), r.index.Dimension)
	}
	scores := r.index.TaskScores(features)
	match := r.index.MatchScores(scores)
	allocation := Allocation{Match: match, Task: match.Nearest}
	if confidence == nil || r.Margin <= 0 || allocation.Task == "" {
		return allocation, nil
	}
	bestConfidence := -1.0
	for i, score := range scores {
		if score > match.Score*(1+r.Margin) {
			continue
		}
		id := r.index.Tasks[i].ID
		value, err := confidence(id)
		if err != nil {
			return Allocation{}, fmt.Errorf("the confidence of task %s: %w", id, err)
		}
		if value > bestConfidence {
			bestConfidence, allocation.Task, allocation.Confidence = value, id, value
		}
	}
	return allocation, nil
}

// Task returns the index's task of that ID.
func (r *Router) Task(id string) (kb.Task, bool) {
	for _, task := range r.index.Tasks {
		if task.ID == id {
			return task, true
		}
	}
	return kb.Task{}, false
}

// MaxSoftmax is the maximum of a probability vector: the classic unseen-input score is 1 minus
// it (Hendrycks and Gimpel).
func MaxSoftmax(probabilities []float64) float64 {
	best := 0.0
	for _, p := range probabilities {
		best = max(best, p)
	}
	return best
}
