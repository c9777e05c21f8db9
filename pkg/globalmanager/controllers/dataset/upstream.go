package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sedna-go/sedna/pkg/channel"
)

// report is what the LC last said about a dataset. Reports are kept in memory: a lost report
// is not a loss, because the LC reports again when the count changes and the status keeps the
// last applied count.
type report struct {
	node       string
	samples    int
	problem    *problem
	receivedAt time.Time
}

type problem struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// reportContent is the LC's report body: upstream's {"numberOfSamples":N}, plus a condition when
// the index file could not be read.
type reportContent struct {
	NumberOfSamples *int     `json:"numberOfSamples"`
	Condition       *problem `json:"condition,omitempty"`
}

// ReportKinds implements runtime.ReportReceiver.
func (c *Controller) ReportKinds() []string { return []string{Kind} }

// HandleReport implements runtime.ReportReceiver: it validates and records the report and
// enqueues the dataset.
func (c *Controller) HandleReport(_ context.Context, node string, key channel.Key, content []byte) error {
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.DisallowUnknownFields()
	var body reportContent
	if err := dec.Decode(&body); err != nil {
		return fmt.Errorf("decoding the dataset report: %w", err)
	}
	if body.NumberOfSamples == nil {
		return fmt.Errorf("the dataset report has no numberOfSamples")
	}
	if *body.NumberOfSamples < 0 {
		return fmt.Errorf("numberOfSamples %d is negative", *body.NumberOfSamples)
	}
	if body.Condition != nil && (body.Condition.Reason == "" || !isCamelCase(body.Condition.Reason)) {
		return fmt.Errorf("condition reason %q is not a CamelCase word", body.Condition.Reason)
	}
	nsName := key.Namespace + "/" + key.Name
	c.reportsMu.Lock()
	c.reports[nsName] = report{node: node, samples: *body.NumberOfSamples, problem: body.Condition, receivedAt: c.now()}
	c.reportsMu.Unlock()
	c.queue.Add(nsName)
	return nil
}

func (c *Controller) latestReport(nsName string) (report, bool) {
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	r, ok := c.reports[nsName]
	return r, ok
}

func (c *Controller) forgetReport(nsName string) {
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	delete(c.reports, nsName)
}

func isCamelCase(s string) bool {
	if len(s) > 128 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}
