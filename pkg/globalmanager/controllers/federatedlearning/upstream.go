package federatedlearning

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// ReportKinds implements runtime.ReportReceiver.
func (c *Controller) ReportKinds() []string { return []string{Kind} }

// workerReport is a training worker's report as the LC forwards it (upstream's shape, plus the
// reporting worker's name and the LC's count of dropped reports).
type workerReport struct {
	Phase  string `json:"phase"`
	Status string `json:"status"`
	// Output's models and ownerInfo are the worker's own: free-form beyond what GM reads.
	Output *struct {
		Models    json.RawMessage `json:"models"`
		OwnerInfo json.RawMessage `json:"ownerInfo"`
	} `json:"output"`
	Worker  string `json:"worker,omitempty"`
	Dropped uint64 `json:"dropped,omitempty"`
}

// ownerInfo is upstream's round progress (currentRound, sampleCount, startTime, updateTime) and
// what this project's aggregation server adds about the round (contract F1); every field beyond
// upstream's is optional.
type ownerInfo struct {
	CurrentRound json.Number `json:"currentRound"`
	UpdateTime   string      `json:"updateTime"`
	// RoundClients is how many updates were aggregated in the round, Participants how many were
	// expected; LateClients the expected workers missing from it; LateUpdates the server's
	// cumulative count of discarded late updates.
	RoundClients *int64   `json:"roundClients"`
	Participants *int64   `json:"participants"`
	LateClients  []string `json:"lateClients"`
	LateUpdates  *int64   `json:"lateUpdates"`
}

// reportedModel is one entry of the worker's results: the aggregated model's evaluation.
type reportedModel struct {
	Format  string                     `json:"format"`
	URL     string                     `json:"url"`
	Metrics map[string]json.RawMessage `json:"metrics"`
}

// jobReports is what the training workers of one job reported, reduced to what the status shows:
// the newest round and its time, the newest round that said which clients were late, and the
// newest metrics.
type jobReports struct {
	// uid is the job the reports are about: a job created again under the same name starts over.
	uid   types.UID
	round int32
	// roundTime is the updateTime of the newest round.
	roundTime string
	// lateness is known once a report said who was missing from its round (Go trainers).
	latenessKnown bool
	latenessRound int32
	late          []string
	lateUpdates   int64
	// roundClients and participants are what the report of latenessRound said: a round closed
	// with fewer clients than participants was short even when no late client is named (the
	// aggregator names only clients it has seen; a trainer that never joined is not one).
	roundClients, participants int64
	// metricsRound is the round of metrics; metrics are sorted by key.
	metricsRound int32
	metrics      []sednav1.Metric
}

// maxLateNames bounds the late workers kept from one report: a job has at most as many as its
// training workers, and a report is untrusted input.
const maxLateNames = 64

// HandleReport records a training worker's progress and enqueues the job. A report must name its
// worker (the LC fills it in), one of the job's pods scheduled on the reporting node; any other
// report is refused with an error, which the hub logs and counts as a rejected report.
func (c *Controller) HandleReport(_ context.Context, node string, key channel.Key, content []byte) error {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var r workerReport
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("decoding the federated learning report: %w", err)
	}
	job, err := c.lister.FederatedLearningJobs(key.Namespace).Get(key.Name)
	if err != nil {
		return fmt.Errorf("federated learning job %s/%s is not known to GM: %w", key.Namespace, key.Name, err)
	}
	if r.Worker == "" {
		return fmt.Errorf("federated learning report about %s/%s names no worker", key.Namespace, key.Name)
	}
	pod, err := c.pods.Pods(key.Namespace).Get(r.Worker)
	if err != nil || !workers.IsControlledBy(pod, ownerOf(job)) {
		return fmt.Errorf("federated learning report about %s/%s: worker %q is not a pod of the job", key.Namespace, key.Name, r.Worker)
	}
	if pod.Spec.NodeName != node {
		return fmt.Errorf("federated learning report about %s/%s: worker %s runs on node %q, not on the reporting node %q",
			key.Namespace, key.Name, r.Worker, pod.Spec.NodeName, node)
	}
	if r.Output == nil {
		return nil // nothing to show; still a valid report
	}
	var info *ownerInfo
	var models []reportedModel
	if err := decodeLenient(r.Output.OwnerInfo, &info); err != nil {
		return fmt.Errorf("federated learning report about %s/%s: ownerInfo: %w", key.Namespace, key.Name, err)
	}
	if err := decodeLenient(r.Output.Models, &models); err != nil {
		return fmt.Errorf("federated learning report about %s/%s: models: %w", key.Namespace, key.Name, err)
	}
	var round int64
	if info != nil && info.CurrentRound != "" {
		round, err = info.CurrentRound.Int64()
		if err != nil || round < 0 || round > math.MaxInt32 {
			return fmt.Errorf("federated learning report about %s/%s: currentRound %q is not a round number", key.Namespace, key.Name, info.CurrentRound)
		}
	}
	metrics, err := modelMetrics(models)
	if err != nil {
		return fmt.Errorf("federated learning report about %s/%s: %w", key.Namespace, key.Name, err)
	}

	nsName := key.Namespace + "/" + key.Name
	c.reportsMu.Lock()
	reports := c.reports[nsName]
	if reports == nil || reports.uid != job.UID {
		reports = &jobReports{uid: job.UID}
		c.reports[nsName] = reports
	}
	reports.add(int32(round), info, metrics)
	c.reportsMu.Unlock()
	c.queue.Add(nsName)
	return nil
}

// decodeLenient decodes a part of a report the worker wrote, where unknown keys are allowed;
// absent or null leaves v as it is.
func decodeLenient(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// add folds one report in; the caller holds reportsMu.
func (r *jobReports) add(round int32, info *ownerInfo, metrics []sednav1.Metric) {
	if info != nil && round > 0 && round >= r.round {
		r.round, r.roundTime = round, info.UpdateTime
	}
	if info != nil && info.Participants != nil && round >= r.latenessRound {
		late := slices.Clone(info.LateClients)
		if len(late) > maxLateNames {
			late = late[:maxLateNames]
		}
		slices.Sort(late)
		r.latenessKnown, r.latenessRound, r.late = true, round, slices.Compact(late)
		r.participants, r.roundClients = *info.Participants, 0
		if info.RoundClients != nil {
			r.roundClients = *info.RoundClients
		}
	}
	if info != nil && info.LateUpdates != nil && *info.LateUpdates > r.lateUpdates {
		r.lateUpdates = *info.LateUpdates
	}
	if len(metrics) > 0 && round >= r.metricsRound {
		r.metricsRound, r.metrics = round, metrics
	}
}

// snapshot returns a copy of the job's reports, nil when there are none for this job.
func (c *Controller) snapshot(job *sednav1.FederatedLearningJob) *jobReports {
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	r := c.reports[job.Namespace+"/"+job.Name]
	if r == nil || r.uid != job.UID {
		return nil
	}
	copied := *r
	copied.late = slices.Clone(r.late)
	copied.metrics = slices.Clone(r.metrics)
	return &copied
}

func (c *Controller) forgetReports(nsName string) {
	c.reportsMu.Lock()
	delete(c.reports, nsName)
	c.reportsMu.Unlock()
}

// maxMetrics bounds the metrics taken from one report, maxMetricLength a string value.
const (
	maxMetrics      = 32
	maxMetricLength = 128
)

// modelMetrics reads output.models[0].metrics: numbers as they were sent, strings as they are, a
// one-element list (upstream's IL shape) as its element; anything else is an error. Sorted by key.
func modelMetrics(models []reportedModel) ([]sednav1.Metric, error) {
	if len(models) == 0 || len(models[0].Metrics) == 0 {
		return nil, nil
	}
	if len(models[0].Metrics) > maxMetrics {
		return nil, fmt.Errorf("%d metrics, at most %d are taken", len(models[0].Metrics), maxMetrics)
	}
	metrics := make([]sednav1.Metric, 0, len(models[0].Metrics))
	for key, raw := range models[0].Metrics {
		value, err := metricValue(raw)
		if err != nil {
			return nil, fmt.Errorf("metric %q: %w", key, err)
		}
		metrics = append(metrics, sednav1.Metric{Key: key, Value: value})
	}
	slices.SortFunc(metrics, func(a, b sednav1.Metric) int { return strings.Compare(a.Key, b.Key) })
	return metrics, nil
}

func metricValue(raw json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	if list, ok := v.([]any); ok && len(list) == 1 {
		v = list[0]
	}
	switch value := v.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(value.String(), 64); err != nil {
			return "", fmt.Errorf("%s is not a number", value)
		}
		return value.String(), nil
	case string:
		if len(value) > maxMetricLength {
			return "", fmt.Errorf("a value of %d bytes, at most %d are taken", len(value), maxMetricLength)
		}
		return value, nil
	default:
		return "", fmt.Errorf("%s is neither a number nor a string", raw)
	}
}

// metricsString is status.metrics: "key=value" sorted by key, joined by ", ".
func metricsString(metrics []sednav1.Metric) string {
	parts := make([]string, len(metrics))
	for i, m := range metrics {
		parts[i] = m.Key + "=" + m.Value
	}
	return strings.Join(parts, ", ")
}
