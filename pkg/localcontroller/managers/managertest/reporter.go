// Package managertest provides test doubles for the interfaces of package managers. It is
// imported by tests only.
package managertest

import (
	"context"
	"slices"
	"sync"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
)

// Report is one call of Reporter.Report.
type Report struct {
	Key     channel.Key
	Content []byte
}

// Reporter records the reports it is given. It is safe for concurrent use.
type Reporter struct {
	mu      sync.Mutex
	reports []Report
	hook    func(ctx context.Context, key channel.Key, content []byte) error
}

var _ managers.Reporter = (*Reporter)(nil)

// SetHook makes every later Report call hook first; when hook returns an error, Report returns
// it and records nothing, as a Reporter whose commit failed would. hook runs without the
// Reporter's lock held, so it may block (to hold a request in flight) or inspect other state.
func (r *Reporter) SetHook(hook func(ctx context.Context, key channel.Key, content []byte) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = hook
}

// Report records the report unless the hook refuses it.
func (r *Reporter) Report(ctx context.Context, key channel.Key, content []byte) error {
	r.mu.Lock()
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, key, content); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, Report{Key: key, Content: slices.Clone(content)})
	return nil
}

// Reports returns a copy of the recorded reports, oldest first.
func (r *Reporter) Reports() []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reports)
}

// Contents returns the content of each recorded report as a string, oldest first.
func (r *Reporter) Contents() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	contents := make([]string, len(r.reports))
	for i, report := range r.reports {
		contents[i] = string(report.Content)
	}
	return contents
}
