package multiedge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxResponseBytes bounds an answer read by a Client.
const maxResponseBytes = 16 << 20

// Client calls one multi-edge server.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for the server at base (http://host:port) presenting token.
// httpClient nil means a client with a 10 s timeout.
func NewClient(base, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: httpClient}
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		encoded, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding %s request: %w", path, err)
		}
		body = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("building %s request: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling %s%s: %w", c.base, path, err)
	}
	defer func() { _ = resp.Body.Close() }() // read fully below; a close error changes nothing
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("reading the answer of %s%s: %w", c.base, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var problem ErrorResponse
		if json.Unmarshal(answer, &problem) != nil || problem.Error == "" {
			problem.Error = strings.TrimSpace(string(answer))
		}
		return fmt.Errorf("calling %s%s: %w", c.base, path, &StatusError{Code: resp.StatusCode, Message: problem.Error})
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("decoding the answer of %s%s: %w", c.base, path, err)
	}
	return nil
}

// ExtractFeatures embeds crops on a feature extraction server.
func (c *Client) ExtractFeatures(ctx context.Context, crops []Image) ([][]float64, error) {
	var resp FeatureResponse
	if err := c.do(ctx, http.MethodPost, PathFeatureExtraction, FeatureRequest{Crops: crops}, &resp); err != nil {
		return nil, err
	}
	if len(resp.Features) != len(crops) {
		return nil, fmt.Errorf("feature extraction answered %d features for %d crops", len(resp.Features), len(crops))
	}
	return resp.Features, nil
}

// SetFETarget sets the feature extraction server's target.
func (c *Client) SetFETarget(ctx context.Context, req TargetRequest) (*TargetFeatures, error) {
	var resp TargetFeatures
	if err := c.do(ctx, http.MethodPost, PathFEUpdateService, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// TargetFeatures reads the feature extraction server's target.
func (c *Client) TargetFeatures(ctx context.Context) (*TargetFeatures, error) {
	var resp TargetFeatures
	if err := c.do(ctx, http.MethodGet, PathFETargetFeatures, nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// ReID asks the gallery for the global identities of one frame's tracks.
func (c *Client) ReID(ctx context.Context, req ReIDRequest) (*ReIDResponse, error) {
	var resp ReIDResponse
	if err := c.do(ctx, http.MethodPost, PathReID, req, &resp); err != nil {
		return nil, err
	}
	if len(resp.Identities) != len(req.Tracks) {
		return nil, fmt.Errorf("reid answered %d identities for %d tracks", len(resp.Identities), len(req.Tracks))
	}
	return &resp, nil
}

// Search asks the gallery where the person with these features was seen.
func (c *Client) Search(ctx context.Context, features [][]float64, top int) ([]SearchResult, error) {
	var resp SearchResponse
	if err := c.do(ctx, http.MethodPost, PathReIDSearch, SearchRequest{Features: features, Top: top}, &resp); err != nil {
		return nil, err
	}
	return resp.Results, nil
}

// Analyze sends one frame to a video analytics server.
func (c *Client) Analyze(ctx context.Context, req FrameRequest) (*FrameResponse, error) {
	var resp FrameResponse
	if err := c.do(ctx, http.MethodPost, PathVideoAnalytics, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// SetVATarget tells a video analytics server whom to follow.
func (c *Client) SetVATarget(ctx context.Context, req TargetRequest) (*Status, error) {
	var resp Status
	if err := c.do(ctx, http.MethodPost, PathVAUpdateService, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Status reads a server's status; service is ServiceFeatureExtraction, ServiceReID or
// ServiceVideoAnalytics.
func (c *Client) Status(ctx context.Context, service string) (*Status, error) {
	var resp Status
	if err := c.do(ctx, http.MethodGet, "/"+service+"/status", nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
