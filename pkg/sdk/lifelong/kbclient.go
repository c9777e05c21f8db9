package lifelong

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sedna-go/sedna/pkg/kb"
)

// maxAnswerBytes bounds a JSON answer of the knowledge base; files have their own bound.
const maxAnswerBytes = 64 << 20

// KBClient talks to a knowledge base (sedna-kb or upstream's) at KB_SERVER.
type KBClient struct {
	base  string // KB_SERVER + "/knowledgebase"
	token string
	http  *http.Client
	// MaxFileBytes bounds a download (1 GiB when zero).
	MaxFileBytes int64
}

// NewKBClient returns a client of the knowledge base at server (KB_SERVER, e.g.
// http://kb.sedna:9020). token, when set, is sent as a bearer token.
func NewKBClient(server, token string, httpClient *http.Client) (*KBClient, error) {
	parsed, err := url.Parse(server)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return nil, fmt.Errorf("%s %q is not an http(s) URL", EnvKBServer, server)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 60 * time.Second}
	}
	return &KBClient{base: strings.TrimSuffix(server, "/") + kb.Prefix, token: token, http: httpClient}, nil
}

// Absolute turns a path the knowledge base answered ("/file/download?...") into a URL, as
// upstream's KBClient does; other URLs are returned unchanged.
func (c *KBClient) Absolute(path string) string {
	if strings.HasPrefix(path, "/") {
		return c.base + path
	}
	return path
}

// UploadFile stores content as name and returns its absolute download URL.
func (c *KBClient) UploadFile(ctx context.Context, name string, content []byte) (string, error) {
	path, err := c.postFile(ctx, kb.RouteFileUpload, "file", name, content)
	if err != nil {
		return "", fmt.Errorf("uploading %s to the knowledge base: %w", name, err)
	}
	return c.Absolute(path), nil
}

// UpdateIndex uploads index and returns the absolute URL the knowledge base serves it at.
func (c *KBClient) UpdateIndex(ctx context.Context, index *kb.Index) (string, error) {
	encoded, err := json.Marshal(index)
	if err != nil {
		return "", fmt.Errorf("encoding the index: %w", err)
	}
	path, err := c.postFile(ctx, kb.RouteUpdate, "task", "index.json", encoded)
	if err != nil {
		return "", fmt.Errorf("updating the knowledge base's index: %w", err)
	}
	return c.Absolute(path), nil
}

// UpdateStatus sets the status of tasks (upstream: 1 once deployed).
func (c *KBClient) UpdateStatus(ctx context.Context, tasks []string, status int) error {
	body, err := json.Marshal(map[string]any{"status": status, "tasks": strings.Join(tasks, ",")})
	if err != nil {
		return err
	}
	var answer string
	if err := c.do(ctx, http.MethodPost, kb.RouteUpdateStatus, "application/json", body, &answer); err != nil {
		return fmt.Errorf("updating task statuses: %w", err)
	}
	return nil
}

// Query asks which task each feature vector belongs to.
func (c *KBClient) Query(ctx context.Context, featureSpace string, features [][]float64) ([]kb.Match, error) {
	body, err := json.Marshal(kb.QueryRequest{FeatureSpace: featureSpace, Features: features})
	if err != nil {
		return nil, err
	}
	var answer kb.QueryResponse
	if err := c.do(ctx, http.MethodPost, kb.RouteQuery, "application/json", body, &answer); err != nil {
		return nil, fmt.Errorf("querying the knowledge base: %w", err)
	}
	if len(answer.Results) != len(features) {
		return nil, fmt.Errorf("querying the knowledge base: %d answers for %d samples", len(answer.Results), len(features))
	}
	return answer.Results, nil
}

// Download fetches an absolute URL of this knowledge base (or a path it answered).
func (c *KBClient) Download(ctx context.Context, rawURL string) ([]byte, error) {
	target := c.Absolute(rawURL)
	if !strings.HasPrefix(target, c.base+"/") {
		// The token is for this knowledge base only.
		return nil, fmt.Errorf("downloading %s: not a URL of the knowledge base %s", rawURL, c.base)
	}
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	response, err := c.send(request)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", rawURL, err)
	}
	defer func() { _ = response.Body.Close() }() // read fully below; nothing to lose
	limit := c.MaxFileBytes
	if limit <= 0 {
		limit = kb.DefaultMaxFileBytes
	}
	content, err := io.ReadAll(io.LimitReader(response.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", rawURL, err)
	}
	if int64(len(content)) > limit {
		return nil, fmt.Errorf("downloading %s: larger than %d bytes", rawURL, limit)
	}
	return content, nil
}

// DownloadIndex fetches and validates a JSON index.
func (c *KBClient) DownloadIndex(ctx context.Context, rawURL string) (*kb.Index, error) {
	content, err := c.Download(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	index, err := kb.ParseIndex(content)
	if err != nil {
		return nil, fmt.Errorf("the index at %s: %w", rawURL, err)
	}
	return index, nil
}

func (c *KBClient) postFile(ctx context.Context, route, field, name string, content []byte) (string, error) {
	var body bytes.Buffer
	writer := multipart.NewWriter(&body)
	part, err := writer.CreateFormFile(field, name)
	if err != nil {
		return "", err
	}
	if _, err := part.Write(content); err != nil {
		return "", err
	}
	if err := writer.Close(); err != nil {
		return "", err
	}
	var path string
	if err := c.do(ctx, http.MethodPost, route, writer.FormDataContentType(), body.Bytes(), &path); err != nil {
		return "", err
	}
	return path, nil
}

func (c *KBClient) do(ctx context.Context, method, route, contentType string, body []byte, into any) error {
	request, err := http.NewRequestWithContext(ctx, method, c.base+route, bytes.NewReader(body))
	if err != nil {
		return err
	}
	request.Header.Set("Content-Type", contentType)
	response, err := c.send(request)
	if err != nil {
		return err
	}
	defer func() { _ = response.Body.Close() }() // read fully below; nothing to lose
	answer, err := io.ReadAll(io.LimitReader(response.Body, maxAnswerBytes))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(answer, into); err != nil {
		return fmt.Errorf("the answer does not parse: %w", err)
	}
	return nil
}

// StatusError is an answer other than 200, with the knowledge base's reason.
type StatusError struct {
	Code   int
	Detail string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("the knowledge base answered %d: %s", e.Code, e.Detail)
}

func (c *KBClient) send(request *http.Request) (*http.Response, error) {
	if c.token != "" {
		request.Header.Set("Authorization", "Bearer "+c.token)
	}
	response, err := c.http.Do(request)
	if err != nil {
		return nil, err
	}
	if response.StatusCode == http.StatusOK {
		return response, nil
	}
	defer func() { _ = response.Body.Close() }() // the error is what matters
	var detail struct {
		Detail string `json:"detail"`
	}
	raw, _ := io.ReadAll(io.LimitReader(response.Body, 4096)) // best effort: the status says enough
	if json.Unmarshal(raw, &detail) != nil || detail.Detail == "" {
		detail.Detail = strings.TrimSpace(string(raw))
	}
	return nil, &StatusError{Code: response.StatusCode, Detail: detail.Detail}
}

// IsUnavailable reports whether err means the knowledge base could not be reached (as opposed
// to a refusal): the inference worker then keeps answering from its cached index.
func IsUnavailable(err error) bool {
	var status *StatusError
	if errors.As(err, &status) {
		return status.Code >= 500
	}
	return err != nil
}
