package lifelonglearning

import (
	"encoding/json"
	"fmt"
	"slices"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// kbModel is a model in a lifelong learning report's output (upstream's condition data model):
// the KB index a train worker wrote or a model an eval worker judged, with the KB's summary.
type kbModel struct {
	Format  string   `json:"format,omitempty"`
	URL     string   `json:"url"`
	Classes []string `json:"classes"`
	// CurrentMetric is per task (model ID) the metrics of its model.
	CurrentMetric        map[string]map[string]float64 `json:"current_metric,omitempty"`
	LabeledUnseenSamples int                           `json:"number_of_labeled_unseen_sample,omitempty"`
	UnseenSamples        int                           `json:"number_of_unseen_sample,omitempty"`
}

// reportOutput is a stage report's output: {"models":[...]}.
type reportOutput struct {
	Models []kbModel `json:"models"`
}

// maxKBModels bounds status.knowledgeBase.AIModels.listOfAIModels and maxKBClasses the class
// list: the output comes from the node's network, and the status must stay small.
const (
	maxKBModels  = 100
	maxKBClasses = 1000
)

// knowledgeBaseOf is status.knowledgeBase from a report's output as upstream computes it, or nil
// when the output names no models, or only models without task metrics, classes or sample counts
// (the knowledge base is then left as it is):
//
//   - AIClasses: the first model's classes;
//   - AIModels: one per model and task of its current_metric, the task being the model ID, with
//     averagePrecision its first metric (by metric name, so that it does not depend on map order)
//     and numberOfTrainSamples the model's number_of_labeled_unseen_sample;
//   - samples: the sums of the models' labelled unseen and unseen samples (upstream always
//     writes 0 unseen samples; a report that names none still gives 0).
func knowledgeBaseOf(output json.RawMessage) (*sednav1.KnowledgeBase, error) {
	if len(output) == 0 {
		return nil, nil
	}
	var out reportOutput
	if err := json.Unmarshal(output, &out); err != nil {
		return nil, fmt.Errorf("reading the models of the stage output: %w", err)
	}
	if !slices.ContainsFunc(out.Models, describesKnowledgeBase) {
		// The LC's Deploy report names only the deployed index file: it says nothing about
		// the tasks, so the summary the train and eval reports gave stands.
		return nil, nil
	}
	kb := &sednav1.KnowledgeBase{}
	classes := out.Models[0].Classes
	if len(classes) > maxKBClasses {
		return nil, fmt.Errorf("the stage output names %d classes, more than %d", len(classes), maxKBClasses)
	}
	kb.AIClasses.ListOfAIClasses = slices.Clone(classes)
	kb.AIClasses.NumberOfAIClasses = len(classes)
	for _, m := range out.Models {
		if m.LabeledUnseenSamples < 0 || m.UnseenSamples < 0 {
			return nil, fmt.Errorf("model %q: negative sample counts", m.URL)
		}
		tasks := make([]string, 0, len(m.CurrentMetric))
		for task := range m.CurrentMetric {
			tasks = append(tasks, task)
		}
		slices.Sort(tasks)
		for _, task := range tasks {
			metrics := m.CurrentMetric[task]
			names := make([]string, 0, len(metrics))
			for name := range metrics {
				names = append(names, name)
			}
			slices.Sort(names)
			model := sednav1.AIModel{ModelID: task, NumberOfTrainSamples: m.LabeledUnseenSamples}
			if len(names) > 0 {
				model.AveragePrecision = metrics[names[0]]
			}
			kb.AIModels.ListOfAIModels = append(kb.AIModels.ListOfAIModels, model)
		}
		kb.Samples.NumberOfLabeledUnseenSample += m.LabeledUnseenSamples
		kb.Samples.NumberOfUnseenSample += m.UnseenSamples
	}
	if n := len(kb.AIModels.ListOfAIModels); n > maxKBModels {
		return nil, fmt.Errorf("the stage output names %d task models, more than %d", n, maxKBModels)
	}
	kb.AIModels.NumberOfAIModels = len(kb.AIModels.ListOfAIModels)
	return kb, nil
}

// describesKnowledgeBase tells whether a reported model says anything about the knowledge base.
func describesKnowledgeBase(m kbModel) bool {
	return len(m.CurrentMetric) > 0 || len(m.Classes) > 0 || m.LabeledUnseenSamples != 0 || m.UnseenSamples != 0
}

// withKnownCounts is next with the sample counts of previous where next reports none: an eval
// report judges the index the train report described and carries no counts (upstream's eval
// workers write 0), so a count of 0 there means "not said", and the summary keeps what the
// train report counted rather than dropping to 0 after every evaluation.
func withKnownCounts(next, previous *sednav1.KnowledgeBase) *sednav1.KnowledgeBase {
	if previous == nil {
		return next
	}
	trained := make(map[string]int, len(previous.AIModels.ListOfAIModels))
	for _, m := range previous.AIModels.ListOfAIModels {
		trained[m.ModelID] = m.NumberOfTrainSamples
	}
	for i, m := range next.AIModels.ListOfAIModels {
		if m.NumberOfTrainSamples == 0 {
			next.AIModels.ListOfAIModels[i].NumberOfTrainSamples = trained[m.ModelID]
		}
	}
	if next.Samples == (sednav1.Samples{}) {
		next.Samples = previous.Samples
	}
	return next
}
