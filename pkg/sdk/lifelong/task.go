package lifelong

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/sedna-go/sedna/pkg/kb"
)

// Definition defines tasks by one attribute of the samples (upstream's task definition by
// attribute): every distinct value of Attribute is one task, named "<attribute>-<value>".
type Definition struct {
	Attribute string
}

var unsafeTaskCharacters = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// TaskID names the task of a sample with these attributes.
func (d Definition) TaskID(attributes map[string]string) (string, error) {
	if d.Attribute == "" {
		return "", errors.New("the task definition names no attribute")
	}
	value, ok := attributes[d.Attribute]
	if !ok || strings.TrimSpace(value) == "" {
		return "", fmt.Errorf("the sample has no value for the task attribute %q", d.Attribute)
	}
	id := unsafeTaskCharacters.ReplaceAllString(d.Attribute+"-"+strings.TrimSpace(value), "_")
	if len(id) > 128 {
		return "", fmt.Errorf("task attribute %q=%.40q makes a task name longer than 128 characters", d.Attribute, value)
	}
	return id, nil
}

// Group splits samples into tasks, in order of first appearance.
func Group[S any](d Definition, samples []S, attributes func(S) map[string]string) ([]string, map[string][]S, error) {
	var order []string
	groups := map[string][]S{}
	for i, sample := range samples {
		id, err := d.TaskID(attributes(sample))
		if err != nil {
			return nil, nil, fmt.Errorf("sample %d: %w", i, err)
		}
		if _, seen := groups[id]; !seen {
			order = append(order, id)
		}
		groups[id] = append(groups[id], sample)
	}
	return order, groups, nil
}

// SummaryOptions say how a task's training features become its region in the index.
type SummaryOptions struct {
	// Centroids is the number of k-means centres (50 when zero).
	Centroids int
	// Quantile of the training samples' distances to their nearest centre that becomes the
	// radius (0.95 when zero): about 1-Quantile of a known task's samples are flagged unseen.
	Quantile float64
	// Iterations of k-means (25 when zero) and its seed.
	Iterations int
	Seed       uint64
}

// Summarise builds the index entry of a task from the feature vectors of its training samples.
func Summarise(id string, attributes map[string]string, model kb.Model, features [][]float64, opts SummaryOptions) (kb.Task, error) {
	if opts.Centroids == 0 {
		opts.Centroids = 50
	}
	if opts.Quantile == 0 {
		opts.Quantile = 0.95
	}
	if opts.Iterations == 0 {
		opts.Iterations = 25
	}
	if !(opts.Quantile > 0 && opts.Quantile <= 1) {
		return kb.Task{}, fmt.Errorf("task %s: quantile %v is outside (0,1]", id, opts.Quantile)
	}
	centroids, err := KMeans(features, opts.Centroids, opts.Iterations, opts.Seed)
	if err != nil {
		return kb.Task{}, fmt.Errorf("task %s: %w", id, err)
	}
	radius := Quantile(NearestDistances(centroids, features), opts.Quantile)
	if !(radius > 0) {
		// Every sample sits on a centre (too few samples): any positive radius keeps them in.
		radius = 1e-9
	}
	return kb.Task{ID: id, Attributes: attributes, Model: model, Centroids: centroids, Radius: radius, NumberOfTrainSamples: len(features)}, nil
}

// Merge returns an index of featureSpace holding previous's tasks (nil: none) with tasks added;
// a task of the same ID replaces the previous one. The result is validated.
func Merge(previous *kb.Index, featureSpace string, dimension int, tasks []kb.Task) (*kb.Index, error) {
	merged := &kb.Index{Format: kb.IndexFormat, FeatureSpace: featureSpace, Dimension: dimension}
	if previous != nil {
		if previous.FeatureSpace != featureSpace || previous.Dimension != dimension {
			return nil, fmt.Errorf("the previous index is of feature space %s/%d, this worker computes %s/%d",
				previous.FeatureSpace, previous.Dimension, featureSpace, dimension)
		}
		replaced := map[string]bool{}
		for _, task := range tasks {
			replaced[task.ID] = true
		}
		for _, task := range previous.Tasks {
			if !replaced[task.ID] {
				merged.Tasks = append(merged.Tasks, task)
			}
		}
	}
	merged.Tasks = append(merged.Tasks, tasks...)
	if err := merged.Validate(); err != nil {
		return nil, fmt.Errorf("the merged index: %w", err)
	}
	return merged, nil
}
