package kb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
)

// IndexFormat is the value of Index.Format the knowledge base understands.
const IndexFormat = "sedna-kb-index/v1"

// Limits of a JSON index, so a hostile or broken index cannot make a query expensive.
const (
	MaxTasks            = 1024
	MaxCentroidsPerTask = 4096
	MaxDimension        = 1 << 16
)

// Index is the knowledge base's view of what it knows, as Go workers upload it (JSON, Format
// IndexFormat). Each task is a region of the feature space (its centroids and a radius) served
// by one model.
type Index struct {
	Format string `json:"format"`
	// FeatureSpace names how features are computed from a sample (e.g. "mnist-pool2"); a query
	// naming another space is refused, so a worker never compares unlike vectors.
	FeatureSpace string `json:"featureSpace"`
	// Dimension is the length of every feature vector and centroid.
	Dimension int    `json:"dimension"`
	Tasks     []Task `json:"tasks"`
}

// Task is one learned task.
type Task struct {
	// ID names the task: 1-128 characters of [A-Za-z0-9._-].
	ID string `json:"id"`
	// Attributes define the task (e.g. {"rotation": "45"}), as the task definition did.
	Attributes map[string]string `json:"attributes,omitempty"`
	Model      Model             `json:"model"`
	// Centroids summarise the task's training features (e.g. k-means centres).
	Centroids [][]float64 `json:"centroids"`
	// Radius is the distance to the nearest centroid below which a sample belongs to the task
	// (e.g. a high percentile of the training samples' distances).
	Radius float64 `json:"radius"`
	// NumberOfTrainSamples is how many labelled samples the model learned from.
	NumberOfTrainSamples int `json:"numberOfTrainSamples,omitempty"`
	// Status is set by update/status (upstream: 1 = deployed); 0 until then.
	Status int `json:"status,omitempty"`
}

// Model is a task's model.
type Model struct {
	URL     string             `json:"url"`
	Format  string             `json:"format,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	Classes []string           `json:"classes,omitempty"`
}

var taskIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ParseIndex decodes and validates a JSON index. Errors name the offending field. The tasks are
// decoded one by one and each centroid checked against the dimension as it is read, so an index
// of many tiny vectors stops at the first bad one instead of allocating many times its size.
func ParseIndex(data []byte) (*Index, error) {
	var header struct {
		Format       string          `json:"format"`
		FeatureSpace string          `json:"featureSpace"`
		Dimension    int             `json:"dimension"`
		Tasks        json.RawMessage `json:"tasks"`
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&header); err != nil {
		return nil, fmt.Errorf("the index is not valid JSON of format %s: %w", IndexFormat, err)
	}
	if decoder.More() {
		return nil, errors.New("the index has data after its JSON object")
	}
	index := Index{Format: header.Format, FeatureSpace: header.FeatureSpace, Dimension: header.Dimension}
	if header.Dimension < 1 || header.Dimension > MaxDimension {
		return nil, fmt.Errorf("index dimension %d is outside [1,%d]", header.Dimension, MaxDimension)
	}
	if len(header.Tasks) > 0 && string(header.Tasks) != "null" {
		tasks, err := decodeTasks(header.Tasks, header.Dimension)
		if err != nil {
			return nil, err
		}
		index.Tasks = tasks
	}
	if err := index.Validate(); err != nil {
		return nil, err
	}
	return &index, nil
}

// decodeTasks reads at most MaxTasks tasks, their centroids through decodeVectors.
func decodeTasks(raw []byte, dimension int) ([]Task, error) {
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.DisallowUnknownFields()
	if err := expectDelim(decoder, '[', `"tasks"`); err != nil {
		return nil, err
	}
	var tasks []Task
	for decoder.More() {
		if len(tasks) == MaxTasks {
			return nil, fmt.Errorf("index has more than %d tasks", MaxTasks)
		}
		name := fmt.Sprintf("tasks[%d]", len(tasks))
		if err := expectDelim(decoder, '{', name); err != nil {
			return nil, err
		}
		var task Task
		for decoder.More() {
			token, err := decoder.Token()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			key, _ := token.(string)
			var into any
			switch key {
			case "id":
				into = &task.ID
			case "attributes":
				into = &task.Attributes
			case "model":
				into = &task.Model
			case "radius":
				into = &task.Radius
			case "numberOfTrainSamples":
				into = &task.NumberOfTrainSamples
			case "status":
				into = &task.Status
			case "centroids":
				if task.Centroids, err = decodeVectors(decoder, name+".centroids", dimension, MaxCentroidsPerTask); err != nil {
					return nil, err
				}
				continue
			default:
				return nil, fmt.Errorf("%s: unknown field %q", name, key)
			}
			if err := decoder.Decode(into); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", name, key, err)
			}
		}
		if err := expectDelim(decoder, '}', name); err != nil {
			return nil, err
		}
		tasks = append(tasks, task)
	}
	if err := expectDelim(decoder, ']', `"tasks"`); err != nil {
		return nil, err
	}
	return tasks, nil
}

// Validate checks everything a query relies on.
func (x *Index) Validate() error {
	if x.Format != IndexFormat {
		return fmt.Errorf("index format is %q, want %q", x.Format, IndexFormat)
	}
	if x.FeatureSpace == "" {
		return errors.New("index featureSpace is empty")
	}
	if x.Dimension < 1 || x.Dimension > MaxDimension {
		return fmt.Errorf("index dimension %d is outside [1,%d]", x.Dimension, MaxDimension)
	}
	if len(x.Tasks) > MaxTasks {
		return fmt.Errorf("index has %d tasks, at most %d allowed", len(x.Tasks), MaxTasks)
	}
	seen := map[string]bool{}
	for i := range x.Tasks {
		task := &x.Tasks[i]
		if !taskIDPattern.MatchString(task.ID) {
			return fmt.Errorf("tasks[%d].id %q: want 1-128 characters of [A-Za-z0-9._-]", i, task.ID)
		}
		if seen[task.ID] {
			return fmt.Errorf("tasks[%d].id %q appears twice", i, task.ID)
		}
		seen[task.ID] = true
		if task.Model.URL == "" {
			return fmt.Errorf("task %q: model.url is empty", task.ID)
		}
		if len(task.Centroids) == 0 || len(task.Centroids) > MaxCentroidsPerTask {
			return fmt.Errorf("task %q: %d centroids, want 1 to %d", task.ID, len(task.Centroids), MaxCentroidsPerTask)
		}
		for j, centroid := range task.Centroids {
			if len(centroid) != x.Dimension {
				return fmt.Errorf("task %q: centroids[%d] has %d values, the index dimension is %d", task.ID, j, len(centroid), x.Dimension)
			}
			if k := firstNonFinite(centroid); k >= 0 {
				return fmt.Errorf("task %q: centroids[%d][%d] is not a finite number", task.ID, j, k)
			}
		}
		if !(task.Radius > 0) || math.IsInf(task.Radius, 0) {
			return fmt.Errorf("task %q: radius %v must be a positive finite number", task.ID, task.Radius)
		}
		for name, value := range task.Model.Metrics {
			if math.IsNaN(value) || math.IsInf(value, 0) {
				return fmt.Errorf("task %q: metric %q is not a finite number", task.ID, name)
			}
		}
	}
	return nil
}

func firstNonFinite(values []float64) int {
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return i
		}
	}
	return -1
}

// Match is the answer for one sample.
type Match struct {
	// Task is the ID of the task the sample belongs to; empty when Unseen.
	Task string `json:"task,omitempty"`
	// Model is that task's model; nil when Unseen.
	Model *Model `json:"model,omitempty"`
	// Unseen is true when the sample is outside every task's radius.
	Unseen bool `json:"unseen"`
	// Nearest is the task whose radius-scaled distance is smallest, even when unseen.
	Nearest string `json:"nearest,omitempty"`
	// Score is that smallest distance divided by the task's radius: at most 1 means "belongs".
	// It is the unseen-task score: the larger, the less the sample looks like any known task.
	Score float64 `json:"score"`
}

// Match assigns one feature vector to a task. The caller checked its length.
func (x *Index) Match(features []float64) Match {
	return x.MatchScores(x.TaskScores(features))
}

// TaskScores returns, for each task in order, the distance from features to the task's nearest
// centroid divided by the task's radius. The caller checked the length of features.
func (x *Index) TaskScores(features []float64) []float64 {
	scores := make([]float64, len(x.Tasks))
	for i := range x.Tasks {
		scores[i] = math.Sqrt(nearestSquaredDistance(x.Tasks[i].Centroids, features)) / x.Tasks[i].Radius
	}
	return scores
}

// MatchScores turns TaskScores into a Match: the task with the smallest score, unseen when that
// score is above 1.
func (x *Index) MatchScores(scores []float64) Match {
	best := Match{Unseen: true, Score: math.Inf(1)}
	for i, score := range scores {
		if score < best.Score {
			best.Score, best.Nearest = score, x.Tasks[i].ID
			best.Task, best.Model, best.Unseen = "", nil, true
			if score <= 1 {
				best.Task, best.Model, best.Unseen = x.Tasks[i].ID, &x.Tasks[i].Model, false
			}
		}
	}
	if math.IsInf(best.Score, 1) {
		// No task at all, or every distance overflowed: unseen. JSON cannot carry +Inf.
		best.Score = math.MaxFloat64
	}
	return best
}

func nearestSquaredDistance(centroids [][]float64, features []float64) float64 {
	nearest := math.Inf(1)
	for _, centroid := range centroids {
		var sum float64
		for k, v := range centroid {
			d := v - features[k]
			sum += d * d
			if sum >= nearest {
				break
			}
		}
		nearest = min(nearest, sum)
	}
	return nearest
}

// TaskIDs returns the IDs of the index's tasks, sorted.
func (x *Index) TaskIDs() []string {
	ids := make([]string, 0, len(x.Tasks))
	for _, task := range x.Tasks {
		ids = append(ids, task.ID)
	}
	sort.Strings(ids)
	return ids
}
