package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Reasons of the condition a monitor reports when it cannot count a dataset.
const (
	// ReasonOutsideAllowedRoots: the host path is relative, contains "..", or it or a symlink on
	// its way lies outside the data roots the LC may read.
	ReasonOutsideAllowedRoots = "OutsideAllowedRoots"
	// ReasonIndexNotFound: the index file (or the S3 object) does not exist.
	ReasonIndexNotFound = "IndexNotFound"
	// ReasonIndexTooLarge: the index file, or one of its lines, is above the LC's limits.
	ReasonIndexTooLarge = "IndexTooLarge"
	// ReasonIndexNotText: the index file contains a NUL byte or invalid UTF-8.
	ReasonIndexNotText = "IndexNotText"
	// ReasonUnsupportedFormat: spec.format is neither txt nor csv.
	ReasonUnsupportedFormat = "UnsupportedFormat"
	// ReasonReadFailed: anything else: an unsupported URL scheme, missing or invalid credentials,
	// an S3 or filesystem error.
	ReasonReadFailed = "ReadFailed"
)

// maxMessageLength keeps a condition message readable in kubectl output whatever error caused it.
const maxMessageLength = 1024

// Condition says why a dataset could not be counted.
type Condition struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Report is the content of a dataset report for GM: the number of samples, and the condition when
// the index could not be counted (NumberOfSamples is then the last count reported).
type Report struct {
	NumberOfSamples int        `json:"numberOfSamples"`
	Condition       *Condition `json:"condition,omitempty"`
}

// sentStatus is what GM last heard about the dataset.
type sentStatus struct {
	Reported        bool       `json:"reported"`
	NumberOfSamples int        `json:"numberOfSamples"`
	Condition       *Condition `json:"condition,omitempty"`
}

// record is the persisted state of a monitor.
type record struct {
	// Spec is what Counter was computed for; a record for another spec keeps only Sent.
	Spec monitoredSpec `json:"spec"`
	// Counter is the state of a host-path counter (s3:// objects are counted from scratch).
	Counter *datasetindex.CounterState `json:"counter,omitempty"`
	Sent    sentStatus                 `json:"sent"`
}

// watch is the state of one monitor goroutine; only that goroutine touches it.
type watch struct {
	m    *Manager
	key  store.ResourceKey
	spec monitoredSpec

	format    datasetindex.Format
	formatErr error
	// counter counts a host-path index incrementally; nil for s3:// URLs and invalid formats.
	counter *datasetindex.Counter
	sent    sentStatus
	// persisted is the record last written (or read), so an unchanged state is not rewritten.
	persisted []byte

	s3Client      *storage.Client
	secretVersion uint64
}

func (m *Manager) newWatch(ctx context.Context, key store.ResourceKey, spec monitoredSpec) *watch {
	logger := klog.FromContext(ctx)
	w := &watch{m: m, key: key, spec: spec}
	w.format, w.formatErr = datasetindex.ParseFormat(spec.Format)

	var restored *datasetindex.CounterState
	raw, found, err := m.store.GetState(StateNamespace, stateKey(key))
	switch {
	case err != nil:
		logger.Error(err, "Reading the dataset's saved state failed; counting from scratch")
	case found:
		var rec record
		if err := json.Unmarshal(raw, &rec); err != nil {
			logger.Error(err, "The dataset's saved state does not parse; counting from scratch")
			break
		}
		w.sent = rec.Sent
		w.persisted = raw
		if rec.Spec == spec {
			restored = rec.Counter
		}
		logger.V(2).Info("Restored dataset state", "numberOfSamples", rec.Sent.NumberOfSamples, "reported", rec.Sent.Reported, "sameSpec", rec.Spec == spec)
	}

	if w.formatErr == nil && !isURL(spec.URL) {
		if restored != nil {
			w.counter = datasetindex.RestoreCounter(w.format, m.opts.Counter, *restored)
		} else {
			w.counter = datasetindex.NewCounter(w.format, m.opts.Counter)
		}
	}
	return w
}

// pass counts once and reports what GM has not heard yet.
func (w *watch) pass(ctx context.Context) {
	count, err := w.count(ctx)
	if ctx.Err() != nil {
		// Stopping: an error now is most likely the cancellation itself, not the dataset's.
		return
	}
	if err != nil {
		w.handleProblem(ctx, classify(err))
		return
	}
	w.handleCount(ctx, count)
}

func (w *watch) handleCount(ctx context.Context, count int) {
	logger := klog.FromContext(ctx)
	if w.sent.Reported && w.sent.Condition == nil && w.sent.NumberOfSamples == count {
		logger.V(4).Info("Number of samples unchanged", "numberOfSamples", count)
		// The counter may still have advanced (blank lines, an unterminated line); saving it
		// spares re-reading them after a restart.
		w.persist(ctx)
		return
	}
	next := sentStatus{Reported: true, NumberOfSamples: count}
	if !w.report(ctx, next) {
		return
	}
	logger.V(2).Info("Reported number of samples", "numberOfSamples", count, "previous", w.sent.NumberOfSamples, "clearedCondition", w.sent.Condition != nil)
	w.sent = next
	w.persist(ctx)
}

func (w *watch) handleProblem(ctx context.Context, condition Condition) {
	logger := klog.FromContext(ctx)
	if w.sent.Condition != nil && *w.sent.Condition == condition {
		logger.V(4).Info("Dataset still cannot be counted; already reported", "reason", condition.Reason)
		w.persist(ctx)
		return
	}
	next := sentStatus{Reported: true, NumberOfSamples: w.sent.NumberOfSamples, Condition: &condition}
	if !w.report(ctx, next) {
		return
	}
	logger.Info("Dataset index cannot be counted; reported to GM", "reason", condition.Reason, "message", condition.Message)
	w.sent = next
	w.persist(ctx)
}

// report queues status for GM and says whether it was committed.
func (w *watch) report(ctx context.Context, status sentStatus) bool {
	content, err := json.Marshal(Report{NumberOfSamples: status.NumberOfSamples, Condition: status.Condition})
	if err != nil {
		klog.FromContext(ctx).Error(err, "Encoding the dataset report failed")
		return false
	}
	key := channel.Key{Kind: Kind, Namespace: w.key.Namespace, Name: w.key.Name}
	if err := w.m.reporter.Report(ctx, key, content); err != nil {
		// Nothing is marked as sent, so the next period reports it again.
		klog.FromContext(ctx).Error(err, "Queueing the dataset report for GM failed; retrying next period", "numberOfSamples", status.NumberOfSamples)
		return false
	}
	return true
}

// persist saves the record when it changed. It runs only after a report was queued or when none
// was due, so the saved counter never claims a count that GM was not sent.
func (w *watch) persist(ctx context.Context) {
	rec := record{Spec: w.spec, Sent: w.sent}
	if w.counter != nil {
		state := w.counter.State()
		rec.Counter = &state
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Encoding the dataset state failed")
		return
	}
	if bytes.Equal(raw, w.persisted) {
		return
	}
	if err := w.m.store.PutState(StateNamespace, stateKey(w.key), raw); err != nil {
		// GM has the report; after a restart the count is at worst reported once more.
		klog.FromContext(ctx).Error(err, "Saving the dataset state failed")
		return
	}
	w.persisted = raw
}

// count returns the number of samples of the dataset's index now.
func (w *watch) count(ctx context.Context) (int, error) {
	if w.formatErr != nil {
		return 0, w.formatErr
	}
	if isURL(w.spec.URL) {
		scheme, _, _ := strings.Cut(w.spec.URL, "://")
		if !strings.EqualFold(scheme, storage.SchemeS3) {
			return 0, fmt.Errorf("dataset URL %q has the unsupported scheme %q: the LC reads host paths and s3:// URLs", w.spec.URL, scheme)
		}
		return w.countS3(ctx)
	}
	// Resolved again every time: the resolved path is only valid at the moment it is computed.
	resolved, err := w.m.opts.Resolver.Resolve(w.spec.URL)
	if err != nil {
		return 0, err
	}
	count, _, err := w.counter.Update(resolved)
	if err != nil {
		return 0, hidePath(err, resolved, w.spec.URL)
	}
	return count, nil
}

// countS3 reads the whole object and counts it from scratch: S3 offers no cheap way to tell
// that an object only grew.
func (w *watch) countS3(ctx context.Context) (int, error) {
	client, err := w.storageClient()
	if err != nil {
		return 0, err
	}
	content, err := w.readObject(ctx, client)
	if err != nil {
		return 0, err
	}
	scratch, err := os.CreateTemp(w.m.opts.ScratchDir, "dataset-index-*")
	if err != nil {
		return 0, fmt.Errorf("creating a scratch file for %s: %w", w.spec.URL, err)
	}
	scratchPath := scratch.Name()
	defer func() {
		// A leftover scratch file only wastes space; the next pass uses a new one.
		_ = os.Remove(scratchPath)
	}()
	_, writeErr := scratch.Write(content)
	closeErr := scratch.Close()
	if err := errors.Join(writeErr, closeErr); err != nil {
		return 0, fmt.Errorf("writing %s to a scratch file: %w", w.spec.URL, err)
	}
	count, _, err := datasetindex.NewCounter(w.format, w.m.opts.Counter).Update(scratchPath)
	if err != nil {
		return 0, hidePath(err, scratchPath, w.spec.URL)
	}
	return count, nil
}

// s3ReadAttempts bounds the re-reads of an object that keeps changing while it is read.
const s3ReadAttempts = 3

// readObject reads the whole object. An object replaced while it is read fails with
// PreconditionFailed (the S3 client pins the ETag of its first response across its ranged
// reads): that is a new version to count, not a problem to report, so it is read again.
func (w *watch) readObject(ctx context.Context, client *storage.Client) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		content, err := client.ReadFile(ctx, w.spec.URL, w.m.opts.MaxS3Bytes)
		var response minio.ErrorResponse
		if err == nil || attempt == s3ReadAttempts || !errors.As(err, &response) || response.Code != "PreconditionFailed" {
			return content, err
		}
		klog.FromContext(ctx).V(4).Info("Dataset object changed while it was read; reading it again", "attempt", attempt)
	}
}

// storageClient returns an S3 client built from the Secret named by spec.credentialName, reusing
// the previous one while the Secret's version is the same.
func (w *watch) storageClient() (*storage.Client, error) {
	name := w.spec.CredentialName
	if name == "" {
		return nil, fmt.Errorf("dataset URL %s is on S3 but spec.credentialName names no Secret with its credentials", w.spec.URL)
	}
	secretKey := store.ResourceKey{Kind: SecretKind, Namespace: w.key.Namespace, Name: name}
	resource, found, err := w.m.store.GetResource(secretKey)
	if err != nil {
		return nil, fmt.Errorf("reading credential Secret %s/%s from the local store: %w", w.key.Namespace, name, err)
	}
	if !found {
		return nil, fmt.Errorf("credential Secret %s/%s is not on this node: GM has not sent it (does it exist?)", w.key.Namespace, name)
	}
	if w.s3Client != nil && resource.Version == w.secretVersion {
		return w.s3Client, nil
	}
	creds, err := storage.CredentialsFromSecretObject(resource.Object)
	if err != nil {
		return nil, fmt.Errorf("reading S3 credentials from Secret %s/%s: %w", w.key.Namespace, name, err)
	}
	client, err := storage.New(w.m.opts.Rootfs, &creds)
	if err != nil {
		return nil, fmt.Errorf("credential Secret %s/%s: %w", w.key.Namespace, name, err)
	}
	w.s3Client, w.secretVersion = client, resource.Version
	return client, nil
}

// isURL tells URLs with a scheme from host paths.
func isURL(raw string) bool { return strings.Contains(raw, "://") }

// pathHidingError replaces a path of the LC's own filesystem (under the rootfs mount, or a
// scratch file) with the URL the user wrote, so the condition speaks of what is in the spec and
// stays the same from one pass to the next.
type pathHidingError struct {
	err     error
	message string
}

func (e *pathHidingError) Error() string { return e.message }
func (e *pathHidingError) Unwrap() error { return e.err }

func hidePath(err error, internal, url string) error {
	return &pathHidingError{err: err, message: strings.ReplaceAll(err.Error(), internal, url)}
}

// classify turns a counting error into the condition to report.
func classify(err error) Condition {
	reason := ReasonReadFailed
	switch {
	case errors.Is(err, datasetindex.ErrOutsideRoots):
		reason = ReasonOutsideAllowedRoots
	case errors.Is(err, datasetindex.ErrNotFound), errors.Is(err, storage.ErrNotFound):
		reason = ReasonIndexNotFound
	case errors.Is(err, datasetindex.ErrTooLarge), errors.Is(err, storage.ErrTooLarge):
		reason = ReasonIndexTooLarge
	case errors.Is(err, datasetindex.ErrBinary):
		reason = ReasonIndexNotText
	case errors.Is(err, datasetindex.ErrUnsupportedFormat):
		reason = ReasonUnsupportedFormat
	}
	return Condition{Reason: reason, Message: truncateMessage(err.Error())}
}

func truncateMessage(message string) string {
	if len(message) <= maxMessageLength {
		return message
	}
	cut := maxMessageLength
	for cut > 0 && !utf8.RuneStart(message[cut]) {
		cut--
	}
	return message[:cut] + "..."
}
