package lc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/workerauth"
)

// Owner kinds and report kinds as upstream spells them on the wire.
const (
	OwnerKindJointInference = "jointinferenceservice"
	KindInference           = "inference"
)

// Upstream's LCClient retry policy: 5 attempts, 3 s apart.
const (
	DefaultAttempts = 5
	DefaultInterval = 3 * time.Second
)

// maxResponseBytes bounds how much of an LC answer we read; the LC answers
// with a short {"Status","Message"} object.
const maxResponseBytes = 64 << 10

// Message is upstream's report body. Results and OwnerInfo are free-form
// because each feature fills them differently; a nil value is left out, as
// upstream only sends them "if any". Joint inference sends an empty, non-nil
// Results ([]), which is kept.
type Message struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	OwnerName string `json:"ownerName"`
	OwnerKind string `json:"ownerKind"`
	Kind      string `json:"kind"`
	Status    string `json:"status,omitempty"`
	Results   any    `json:"results,omitempty"`
	OwnerInfo any    `json:"ownerInfo,omitempty"`
}

// Options configures a Client. Zero values take upstream's defaults.
type Options struct {
	// Server is the LC base URL (LC_SERVER).
	Server string
	// Worker is the worker name used in the URL path (WORKER_NAME).
	Worker string
	// Attempts is the total number of tries, at least 1.
	Attempts int
	// Interval is the pause between tries.
	Interval time.Duration
	// HTTPClient defaults to a client with a 10 s timeout, so a hung LC
	// cannot stall a reporter forever.
	HTTPClient *http.Client
	// Token is the job's worker token, sent as "Authorization: Bearer" so the
	// LC knows the report comes from one of the job's workers. Empty means the
	// SEDNA_WORKER_TOKEN environment variable GM sets; when that is unset too,
	// no token is sent and the LC goes by the worker's pod IP.
	Token string
}

// Client posts reports to one worker's LC endpoint.
type Client struct {
	endpoint string
	attempts int
	interval time.Duration
	http     *http.Client
	token    string
}

// New validates opts and returns a Client.
func New(opts Options) (*Client, error) {
	if opts.Worker == "" {
		return nil, errors.New("creating LC client: worker name is empty (is WORKER_NAME set?)")
	}
	base, err := url.Parse(strings.TrimRight(opts.Server, "/"))
	if err != nil {
		return nil, fmt.Errorf("creating LC client: parsing LC server URL %q: %w", opts.Server, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Hostname() == "" {
		return nil, fmt.Errorf("creating LC client: LC server URL %q is not an http(s) URL with a host", opts.Server)
	}
	base = base.JoinPath("sedna", "workers", opts.Worker, "info")
	token := opts.Token
	if token == "" {
		token = os.Getenv(workerauth.TokenEnv)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return nil, fmt.Errorf("creating LC client: the worker token (%s) contains white space", workerauth.TokenEnv)
	}
	client := &Client{
		endpoint: base.String(),
		attempts: opts.Attempts,
		interval: opts.Interval,
		http:     opts.HTTPClient,
		token:    token,
	}
	if client.attempts <= 0 {
		client.attempts = DefaultAttempts
	}
	if client.interval <= 0 {
		client.interval = DefaultInterval
	}
	if client.http == nil {
		client.http = &http.Client{Timeout: 10 * time.Second}
	}
	return client, nil
}

// Endpoint is the URL reports are posted to.
func (c *Client) Endpoint() string { return c.endpoint }

// StatusError is an LC answer other than success: an HTTP status other than
// 200, or an HTTP 200 whose body carries another outcome. The LC answers
// reports it drops (an owner it does not run, content it cannot use, a full
// outbox) with HTTP 200 and the outcome in the body, because upstream's
// library stops reporting for good after any other HTTP status.
type StatusError struct {
	// StatusCode is the outcome: the body's Status when InBody, else the
	// HTTP status.
	StatusCode int
	// InBody is true when the LC answered HTTP 200 with this outcome in the
	// body: the report was read and dropped.
	InBody bool
	// Message is the LC's explanation ("Message" in its JSON answer), or the
	// raw body when the answer is not that JSON.
	Message string
}

func (e *StatusError) Error() string {
	if e.InBody {
		return fmt.Sprintf("LC dropped the report (%d %s): %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
	}
	return fmt.Sprintf("LC answered %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// retryable reports whether sending the same report again may succeed: not
// after the LC refused the message (400) or the sender (403). A 404 is
// retried: the LC may not have received the report's owner from GM yet.
func (e *StatusError) retryable() bool {
	return e.StatusCode != http.StatusBadRequest && e.StatusCode != http.StatusForbidden
}

// Retryable reports whether err, returned by Report, may go away if the same report is sent
// again later: every error but the LC's refusal of the message or the sender (400, 403).
func Retryable(err error) bool {
	var statusErr *StatusError
	return err != nil && (!errors.As(err, &statusErr) || statusErr.retryable())
}

// Report posts msg, retrying failed attempts. A refusal of the message or
// the sender (400, 403, in the body or not) is not retried: resending cannot
// help. It returns the last error, wrapped, when every
// attempt failed or ctx ended; a *StatusError says what the LC answered.
func (c *Client) Report(ctx context.Context, msg Message) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding %s report for the LC: %w", msg.Kind, err)
	}
	logger := klog.FromContext(ctx)
	var lastErr error
	for attempt := 1; attempt <= c.attempts; attempt++ {
		lastErr = c.post(ctx, body)
		if lastErr == nil {
			return nil
		}
		var statusErr *StatusError
		if errors.As(lastErr, &statusErr) && !statusErr.retryable() {
			break
		}
		if attempt == c.attempts {
			break
		}
		logger.V(4).Info("Reporting to the LC failed, retrying", "endpoint", c.endpoint, "attempt", attempt, "err", lastErr)
		timer := time.NewTimer(c.interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("reporting %s to %s: %w (last attempt: %w)", msg.Kind, c.endpoint, ctx.Err(), lastErr)
		case <-timer.C:
		}
	}
	return fmt.Errorf("reporting %s to %s: %w", msg.Kind, c.endpoint, lastErr)
}

func (c *Client) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("posting: %w", err)
	}
	defer func() { _ = resp.Body.Close() }() // the answer has been read; nothing to do with a close error
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode != http.StatusOK {
		return &StatusError{StatusCode: resp.StatusCode, Message: lcMessage(answer)}
	}
	if readErr != nil {
		return fmt.Errorf("reading the LC's answer: %w", readErr)
	}
	if outcome, message, ok := lcOutcome(answer); ok && outcome != http.StatusOK {
		return &StatusError{StatusCode: outcome, InBody: true, Message: message}
	}
	return nil
}

// lcOutcome reads the Status and Message of a 200 answer. An answer that is
// not that JSON, or has no Status, is a plain success, as upstream's LC
// never answered otherwise.
func lcOutcome(answer []byte) (int, string, bool) {
	var parsed struct {
		Status  *int   `json:"Status"`
		Message string `json:"Message"`
	}
	if err := json.Unmarshal(answer, &parsed); err != nil || parsed.Status == nil {
		return 0, "", false
	}
	return *parsed.Status, parsed.Message, true
}

// lcMessage extracts the LC's explanation from {"Status":..,"Message":..}.
func lcMessage(answer []byte) string {
	var parsed struct {
		Message string `json:"Message"`
	}
	if err := json.Unmarshal(answer, &parsed); err == nil && parsed.Message != "" {
		return parsed.Message
	}
	text := strings.TrimSpace(string(answer))
	if text == "" {
		return "(empty body)"
	}
	return text
}
