package federated

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// An unsubscribed connection may not make the server read a model-sized
// message: a first frame above the subscribe limit is refused from its
// header (1009) instead of being read up to the binary mode's 1 GiB.
func TestFirstFrameIsBoundedBeforeSubscribe(t *testing.T) {
	s, url := startServer(t, ServerOptions{Admission: Admission{Token: testToken}, Policy: Policy{Participants: 1, ExitRound: 5}})
	bearer := http.Header{"Authorization": {"Bearer " + testToken}}
	for name, kind := range map[string]int{"binary": websocket.BinaryMessage, "text": websocket.TextMessage} {
		t.Run(name, func(t *testing.T) {
			// A write buffer larger than the frame sends it as one frame,
			// so its header announces the whole length.
			dialer := websocket.Dialer{Subprotocols: []string{BinarySubprotocol}, WriteBufferSize: 2 << 20}
			ws, _, err := dialer.Dial(url, bearer)
			require.NoError(t, err)
			t.Cleanup(func() { _ = ws.Close() })
			require.Equal(t, BinarySubprotocol, ws.Subprotocol())
			// The write may fail once the server hangs up; only the close
			// code matters.
			go func() { _ = ws.WriteMessage(kind, make([]byte, 1<<20)) }()
			require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, _, err = ws.ReadMessage()
			require.True(t, websocket.IsCloseError(err, websocket.CloseMessageTooBig), "got %v", err)
		})
	}
	require.Zero(t, s.connected())

	// Once subscribed, the binary mode's limit applies again.
	dialer := websocket.Dialer{Subprotocols: []string{BinarySubprotocol}}
	ws, _, err := dialer.Dial(url, bearer)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","client_id":"big"}`)))
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, ack, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, `{"type":"subscribe","client_id":"big"}`, string(ack))
	layer := NewLayer(40000) // 320 KiB of float64, above the subscribe limit
	frame, err := encodeBinary(binaryHeader{Type: TypeUpdateWeight, Client: "big", JobName: testJob, NumSamples: 1}, Weights{layer}, Float64)
	require.NoError(t, err)
	require.Greater(t, len(frame), maxSubscribeBytes)
	require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, frame))
	kind, data, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.BinaryMessage, kind, "the aggregate of round 1: %s", data)
	require.Equal(t, 1, s.Stats().Round)
}

func dialWith(t *testing.T, url, id, authorization string) (*websocket.Conn, string, error) {
	t.Helper()
	header := http.Header{}
	if authorization != "" {
		header.Set("Authorization", authorization)
	}
	ws, _, err := websocket.DefaultDialer.Dial(url, header)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","client_id":"`+id+`"}`)))
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, data, err := ws.ReadMessage()
	return ws, string(data), err
}

// readUntilClosed reads ws until the server closes it and returns the error.
func readUntilClosed(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return err
		}
	}
}

// In compatibility mode an anonymous connection may not take over the
// client_id of a connection that presented the job's token; a token-holding
// connection may replace either kind.
func TestAnonymousConnectionCannotReplaceTokenClient(t *testing.T) {
	const token = "job-secret-123"
	s, url := startServer(t, ServerOptions{Admission: Admission{Token: token, AllowAnonymous: true}, Policy: Policy{Participants: 2, ExitRound: 5}})

	owner, ack, err := dialWith(t, url, "w1", "Bearer "+token)
	require.NoError(t, err)
	require.Equal(t, `{"type":"subscribe","client_id":"w1"}`, ack)

	impostor, _, err := dialWith(t, url, "w1", "")
	require.True(t, websocket.IsCloseError(err, closeNotYours), "got %v", err)
	var closeErr *websocket.CloseError
	require.ErrorAs(t, err, &closeErr)
	require.Contains(t, closeErr.Text, "anonymous connection may not replace")
	_ = impostor
	stats := s.Stats()
	require.Zero(t, stats.Replaced)
	require.Equal(t, 1, stats.Connected)
	// The owner keeps its connection: it is the one that gets the next
	// client's join.
	_, _, err = dialWith(t, url, "w2", "")
	require.NoError(t, err)
	require.NoError(t, owner.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, join, err := owner.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, `{"type":"CLIENT_JOIN","data":"w2"}`, string(join))

	// A token-holding connection replaces a token-holding one ...
	owner2, _, err := dialWith(t, url, "w1", "Bearer "+token)
	require.NoError(t, err)
	require.True(t, websocket.IsCloseError(readUntilClosed(t, owner), closeReplaced))
	// ... and an anonymous one.
	_, _, err = dialWith(t, url, "w2", "Bearer "+token)
	require.NoError(t, err)
	waitFor(t, "both replacements", func() bool { return s.Stats().Replaced == 2 })
	// An anonymous connection may still replace an anonymous one (a
	// restarted Python trainer).
	anon, _, err := dialWith(t, url, "w3", "")
	require.NoError(t, err)
	_, _, err = dialWith(t, url, "w3", "")
	require.NoError(t, err)
	require.True(t, websocket.IsCloseError(readUntilClosed(t, anon), closeReplaced))
	require.Equal(t, 3, s.Stats().Replaced)
	_ = owner2
}

// The ids the server remembers to name missing clients are bounded by
// Participants + MaxClients: a stream of short-lived client ids does not
// grow them (nor the status endpoint's MissingClients) without end.
func TestKnownClientsAreBounded(t *testing.T) {
	s, url := startServer(t, ServerOptions{MaxClients: 2, Policy: Policy{Participants: 1, ExitRound: 5}})
	for i := range 10 {
		p, _ := dialPython(t, url, fmt.Sprintf("gone-%d", i))
		require.NoError(t, p.ws.Close())
		waitFor(t, "the client to leave", func() bool { return s.connected() == 0 })
	}
	x, _ := dialPython(t, url, "x")
	x.sendUpdate(1, `[[1.0]]`)
	x.recvWeight()
	// Three ids are kept: x and the two most recent others.
	require.Equal(t, []string{"gone-8", "gone-9"}, s.Stats().MissingClients)
	s.mu.Lock()
	require.Len(t, s.known, 3)
	s.mu.Unlock()
}

// The bearer token is parsed strictly (workerauth.ParseBearer): a second
// Authorization header, or a token after two spaces (the old parser trimmed them), is refused rather
// than half-read.
func TestAdmissionParsesBearerStrictly(t *testing.T) {
	const token = "job-secret-123"
	_, url := startServer(t, ServerOptions{Admission: Admission{Token: token, AllowAnonymous: true}, Policy: Policy{Participants: 1, ExitRound: 1}})
	for name, tc := range map[string]struct {
		values []string
		want   int
	}{
		"right token twice":        {[]string{"Bearer " + token, "Bearer " + token}, http.StatusUnauthorized},
		"right token, then other":  {[]string{"Bearer " + token, "Bearer nope"}, http.StatusUnauthorized},
		"two spaces":               {[]string{"Bearer  " + token}, http.StatusUnauthorized},
		"too long":                 {[]string{"Bearer " + strings.Repeat("a", 513)}, http.StatusUnauthorized},
		"empty":                    {[]string{"Bearer "}, http.StatusUnauthorized},
		"scheme in lower case":     {[]string{"bearer " + token}, http.StatusSwitchingProtocols},
		"right token":              {[]string{"Bearer " + token}, http.StatusSwitchingProtocols},
		"anonymous in compat mode": {nil, http.StatusSwitchingProtocols},
	} {
		t.Run(name, func(t *testing.T) {
			header := http.Header{}
			for _, v := range tc.values {
				header.Add("Authorization", v)
			}
			ws, resp, err := websocket.DefaultDialer.Dial(url, header)
			require.Equal(t, tc.want, resp.StatusCode)
			if tc.want != http.StatusSwitchingProtocols {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.NoError(t, ws.Close())
		})
	}
}

// An anonymous connection (compatibility mode, or no token configured) may
// not negotiate the binary subprotocol: it keeps JSON and its 16 MiB cap, so
// it can never make the server read a 1 GiB message.
func TestAnonymousConnectionGetsNoBinarySubprotocol(t *testing.T) {
	for name, admission := range map[string]Admission{
		"compat":   {Token: testToken, AllowAnonymous: true},
		"no token": {},
	} {
		t.Run(name, func(t *testing.T) {
			s, url := startServer(t, ServerOptions{Admission: admission, MaxJSONMessageBytes: 1 << 20, Policy: Policy{Participants: 1, ExitRound: 5}})
			dialer := websocket.Dialer{Subprotocols: []string{BinarySubprotocol}, WriteBufferSize: 4 << 20}
			ws, _, err := dialer.Dial(url, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = ws.Close() })
			require.Empty(t, ws.Subprotocol(), "an anonymous connection must not get binary frames")
			require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","client_id":"anon"}`)))
			require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, _, err = ws.ReadMessage()
			require.NoError(t, err)
			// A binary frame above the JSON cap closes the connection with
			// 1009: the binary limit does not apply.
			go func() { _ = ws.WriteMessage(websocket.BinaryMessage, make([]byte, 2<<20)) }()
			_, _, err = ws.ReadMessage()
			require.True(t, websocket.IsCloseError(err, websocket.CloseMessageTooBig), "got %v", err)
			require.Zero(t, s.Stats().Round)
		})
	}
	// With the token, the same dial gets binary.
	_, url := startServer(t, ServerOptions{Admission: Admission{Token: testToken, AllowAnonymous: true}, Policy: Policy{Participants: 1, ExitRound: 5}})
	ws, _, err := (&websocket.Dialer{Subprotocols: []string{BinarySubprotocol}}).Dial(url, http.Header{"Authorization": {"Bearer " + testToken}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	require.Equal(t, BinarySubprotocol, ws.Subprotocol())
}

// Messages of types the protocol does not know are relayed only from
// connections that presented the token; an anonymous sender gets an error
// frame, the message is counted as invalid and nobody else sees it.
func TestAnonymousConnectionMayNotRelay(t *testing.T) {
	s, url := startServer(t, ServerOptions{Admission: Admission{Token: testToken, AllowAnonymous: true}, Policy: Policy{Participants: 3, ExitRound: 5}})
	witness, _, err := dialWith(t, url, "witness", "Bearer "+testToken)
	require.NoError(t, err)
	anon, _, err := dialWith(t, url, "anon", "")
	require.NoError(t, err)
	_, _, err = witness.ReadMessage() // CLIENT_JOIN of anon
	require.NoError(t, err)
	_, _, err = witness.ReadMessage() // subscribe echo of anon
	require.NoError(t, err)
	require.NoError(t, anon.WriteMessage(websocket.TextMessage, []byte(`{"type":"train_info","client":"anon","data":"x"}`)))
	_, answer, err := anon.ReadMessage()
	require.NoError(t, err)
	require.Contains(t, string(answer), `"type":"error"`)
	require.Contains(t, string(answer), "only connections with the job's token")
	require.Equal(t, 1, s.Stats().Invalid)
	// The witness sees its own relay next, not the anonymous one.
	own := `{"type":"train_info","client":"witness","data":"y"}`
	require.NoError(t, witness.WriteMessage(websocket.TextMessage, []byte(own)))
	_, next, err := witness.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, own, string(next))
}
