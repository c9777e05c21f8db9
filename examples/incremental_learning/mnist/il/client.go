package il

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls an inference worker's API.
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// Classify sends one batch; collect=false asks the worker to file none of its hard examples.
func (c *Client) Classify(ctx context.Context, images [][]float64, collect bool) (ClassifyResponse, error) {
	var response ClassifyResponse
	body, err := json.Marshal(ClassifyRequest{Images: images})
	if err != nil {
		return response, err
	}
	url := strings.TrimSuffix(c.BaseURL, "/") + ClassifyPath
	if !collect {
		url += "?collect=false"
	}
	request, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return response, err
	}
	request.Header.Set("Content-Type", "application/json")
	return response, c.do(request, &response)
}

// Stats reads GET /stats.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var stats Stats
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.BaseURL, "/")+StatsPath, nil)
	if err != nil {
		return stats, err
	}
	return stats, c.do(request, &stats)
}

func (c *Client) do(request *http.Request, out any) error {
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	response, err := client.Do(request)
	if err != nil {
		return err
	}
	defer func() { _ = response.Body.Close() }() // fully read below
	body, err := io.ReadAll(io.LimitReader(response.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", request.Method, request.URL, err)
	}
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", request.Method, request.URL, response.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", request.Method, request.URL, err)
	}
	return nil
}
