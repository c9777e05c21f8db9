// Package managertest provides test doubles for the interfaces of package managers. It is
// imported by tests only.
package managertest

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

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

// Decoded decodes the recorded contents that are JSON objects with (has) or without (!has) the
// field, oldest first: the learning managers' forwarded worker reports carry "worker", their own
// stage reports do not. A content that does not decode fails t.
func Decoded[T any](t testing.TB, r *Reporter, field string, has bool) []T {
	t.Helper()
	var decoded []T
	for _, content := range r.Contents() {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal([]byte(content), &probe); err != nil {
			t.Fatalf("report %s is not a JSON object: %v", content, err)
		}
		if _, found := probe[field]; found != has {
			continue
		}
		var value T
		if err := json.Unmarshal([]byte(content), &value); err != nil {
			t.Fatalf("report %s does not decode: %v", content, err)
		}
		decoded = append(decoded, value)
	}
	return decoded
}
