package rounds

import (
	"slices"
	"strings"
)

// MaxEvalVersions is how many batches of new evaluation samples make up the eval data, as upstream.
const MaxEvalVersions = 5

// Pools are the samples a learning job took from its dataset index and has not used up yet. The
// JSON names are those the incremental learning manager has always saved.
type Pools struct {
	// DatasetURL is the index file SeenSamples counts lines of; another URL starts over.
	DatasetURL string `json:"datasetURL,omitempty"`
	// SeenSamples is how many samples of the index have been split into the pools.
	SeenSamples  int        `json:"seenSamples"`
	TrainPool    []string   `json:"trainPool,omitempty"`
	EvalVersions [][]string `json:"evalVersions,omitempty"`
}

// Taken says what Take did with an index.
type Taken struct {
	// Fresh is how many samples were new; Train how many of them went to the train pool.
	Fresh, Train int
	// Shrank: the index has fewer samples than were seen; its current length is the new baseline.
	Shrank bool
}

// Take splits the samples of the index at url added since the last call, as upstream: the first
// int(trainProb*new) into the train pool, the rest into a new eval version (at most
// MaxEvalVersions are kept). The receiver is not changed: the new pools are returned.
func (p Pools) Take(url string, samples []string, trainProb float64) (Pools, Taken) {
	next := p
	if next.DatasetURL != url {
		next.DatasetURL, next.SeenSamples = url, 0
	}
	if len(samples) < next.SeenSamples {
		next.SeenSamples = len(samples)
		return next, Taken{Shrank: true}
	}
	fresh := samples[next.SeenSamples:]
	if len(fresh) == 0 {
		return next, Taken{}
	}
	toTrain := int(trainProb * float64(len(fresh)))
	next.TrainPool = append(slices.Clone(next.TrainPool), fresh[:toTrain]...)
	if evalPart := fresh[toTrain:]; len(evalPart) > 0 {
		next.EvalVersions = append(slices.Clone(next.EvalVersions), slices.Clone(evalPart))
		if extra := len(next.EvalVersions) - MaxEvalVersions; extra > 0 {
			next.EvalVersions = next.EvalVersions[extra:]
		}
	}
	next.SeenSamples = len(samples)
	return next, Taken{Fresh: len(fresh), Train: toTrain}
}

// EvalSamples are all kept eval versions, oldest first.
func (p Pools) EvalSamples() []string {
	var all []string
	for _, version := range p.EvalVersions {
		all = append(all, version...)
	}
	return all
}

// SplitSamples returns the samples of a dataset index: its terminated, non-blank lines, without
// the header line of a csv index.
func SplitSamples(content []byte, format string) []string {
	lines := strings.Split(strings.ReplaceAll(string(content), "\r\n", "\n"), "\n")
	// The last line is a sample only once it is terminated: a writer may be halfway through it.
	lines = lines[:len(lines)-1]
	if strings.EqualFold(format, "csv") && len(lines) > 0 {
		lines = lines[1:]
	}
	samples := make([]string, 0, len(lines))
	for _, line := range lines {
		if strings.TrimSpace(line) != "" {
			samples = append(samples, line)
		}
	}
	return samples
}
