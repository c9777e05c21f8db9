package jointinference

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// lcTimeLayout is upstream's "%Y-%m-%d %H:%M:%S" in local time.
const lcTimeLayout = "2006-01-02 15:04:05"

// Reporter sends one message to the LC; *lc.Client implements it.
type Reporter interface {
	Report(ctx context.Context, msg lc.Message) error
}

var _ Reporter = (*lc.Client)(nil)

// ReporterOptions identifies the edge worker in its reports.
type ReporterOptions struct {
	Reporter Reporter
	// Period is LC_PERIOD.
	Period time.Duration
	// Name and Namespace are WORKER_NAME and NAMESPACE; OwnerName is the
	// service's name (JOB_NAME, see the contract's note on "sedna").
	Name, Namespace, OwnerName string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// OwnerInfo is what the JI edge reports, upstream's field names.
type OwnerInfo struct {
	StartTime         string  `json:"startTime"`
	UpdateTime        string  `json:"updateTime"`
	InferenceNumber   int64   `json:"inferenceNumber"`
	HardExampleNumber int64   `json:"hardExampleNumber"`
	UploadCloudRatio  float64 `json:"uploadCloudRatio"`
}

// RunReporter reports the cumulative counters every Period until ctx ends,
// skipping periods without inferences as upstream does. A failed report is
// logged and leaves the period's inferences pending, so the next period
// reports even if it saw none; the counters are cumulative, so nothing is
// lost. It returns nil when ctx ends.
func (e *Edge) RunReporter(ctx context.Context, opts ReporterOptions) error {
	if opts.Reporter == nil {
		return errors.New("running the joint inference reporter: a Reporter is required")
	}
	if opts.Period <= 0 {
		return fmt.Errorf("running the joint inference reporter: period %s must be positive", opts.Period)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	logger := klog.FromContext(ctx)
	ticker := time.NewTicker(opts.Period)
	defer ticker.Stop()
	windowStart := now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		sent, err := e.reportOnce(ctx, opts, windowStart, now())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			logger.Error(err, "Reporting joint inference counters to the LC failed")
			continue
		}
		if sent {
			logger.V(4).Info("Reported joint inference counters to the LC")
		}
		windowStart = now()
	}
}

// reportOnce sends the counters if there were inferences since the last
// successful report.
func (e *Edge) reportOnce(ctx context.Context, opts ReporterOptions, windowStart, updated time.Time) (bool, error) {
	e.mu.Lock()
	stats, pending := e.stats, e.pending
	e.mu.Unlock()
	if pending == 0 {
		return false, nil
	}
	msg := lc.Message{
		Name:      opts.Name,
		Namespace: opts.Namespace,
		OwnerName: opts.OwnerName,
		OwnerKind: lc.OwnerKindJointInference,
		Kind:      lc.KindInference,
		// Upstream sends an empty list, not an absent key.
		Results: []any{},
		OwnerInfo: OwnerInfo{
			StartTime:         windowStart.Local().Format(lcTimeLayout),
			UpdateTime:        updated.Local().Format(lcTimeLayout),
			InferenceNumber:   stats.InferenceNumber,
			HardExampleNumber: stats.HardExampleNumber,
			UploadCloudRatio:  stats.UploadCloudRatio(),
		},
	}
	if err := opts.Reporter.Report(ctx, msg); err != nil {
		return false, fmt.Errorf("reporting %d inferences: %w", stats.InferenceNumber, err)
	}
	e.mu.Lock()
	// Inferences that landed while the report was in flight stay pending.
	e.pending -= pending
	e.mu.Unlock()
	return true, nil
}
