package federated

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
)

const testJob = "surface-defect"

// testToken is the job token of tests whose Go clients use binary frames:
// only connections that present the token may negotiate them.
const testToken = "test-job-token"

// startServer serves a Server on a loopback port until the test ends.
func startServer(t *testing.T, opts ServerOptions) (*Server, string) {
	t.Helper()
	if opts.Job == "" {
		opts.Job = testJob
	}
	_, ctx := ktesting.NewTestContext(t)
	s, err := NewServer(ctx, opts)
	require.NoError(t, err)
	httpServer := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		httpServer.Close()
	})
	return s, "ws" + strings.TrimPrefix(httpServer.URL, "http") + s.Path()
}

func testContext(t *testing.T) context.Context {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pyClient behaves exactly like upstream's Python client: it subscribes with
// json.dumps' default separators, does one recv() as the acknowledgement,
// sends update_weight, and reads frames until one is a recv_weight. Its
// frame cap is the websockets library's 16 MiB.
type pyClient struct {
	t  *testing.T
	id string
	ws *websocket.Conn
}

func dialPython(t *testing.T, url, id string) (*pyClient, string) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Empty(t, ws.Subprotocol(), "a Python client negotiates no subprotocol")
	ws.SetReadLimit(16 << 20)
	t.Cleanup(func() { _ = ws.Close() })
	p := &pyClient{t: t, id: id, ws: ws}
	p.send(`{"type": "subscribe", "client_id": "` + id + `"}`)
	return p, p.recv()
}

func (p *pyClient) send(frame string) {
	p.t.Helper()
	require.NoError(p.t, p.ws.WriteMessage(websocket.TextMessage, []byte(frame)))
}

func (p *pyClient) recv() string {
	p.t.Helper()
	require.NoError(p.t, p.ws.SetReadDeadline(time.Now().Add(20*time.Second)))
	kind, data, err := p.ws.ReadMessage()
	require.NoError(p.t, err)
	require.Equal(p.t, websocket.TextMessage, kind, "Python clients only get text frames")
	return string(data)
}

// sendUpdate sends update_weight as json.dumps writes it.
func (p *pyClient) sendUpdate(numSamples int, weights string) {
	p.t.Helper()
	p.send(`{"type": "update_weight", "client": "` + p.id + `", "data": {"num_samples": ` + itoa(numSamples) +
		`, "weights": ` + weights + `}, "job_name": "` + testJob + `"}`)
}

// recvWeight reads until a recv_weight, returning the skipped frames too.
func (p *pyClient) recvWeight() (string, []string) {
	p.t.Helper()
	var skipped []string
	for {
		frame := p.recv()
		var msg struct {
			Type string `json:"type"`
		}
		require.NoError(p.t, json.Unmarshal([]byte(frame), &msg))
		if msg.Type == TypeRecvWeight {
			return frame, skipped
		}
		skipped = append(skipped, frame)
	}
}

// pythonRecv decodes recv_weight as the Python client uses it.
type pythonRecv struct {
	Type        string `json:"type"`
	Client      string `json:"client"`
	JobName     string `json:"job_name"`
	RoundNumber int    `json:"round_number"`
	Data        struct {
		TotalSample int         `json:"total_sample"`
		RoundNumber int         `json:"round_number"`
		Weights     [][]float64 `json:"weights"`
		ExitFlag    string      `json:"exit_flag"`
	} `json:"data"`
}

func decodeRecv(t *testing.T, frame string) pythonRecv {
	t.Helper()
	var msg pythonRecv
	require.NoError(t, json.Unmarshal([]byte(frame), &msg))
	return msg
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// waitFor polls cond (the server works in its own goroutines).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// openCount is how many updates the open round has accepted.
func (s *Server) openCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open.count
}

func (s *Server) connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func jsonDecode(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
