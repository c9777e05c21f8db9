package messagelayer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// switchAuth accepts any token as node-a (or node, when set) until refused is set, and fails to
// decide while err is set.
type switchAuth struct {
	mu      sync.Mutex
	refused bool
	err     error
	node    string
	reviews int
}

func (a *switchAuth) Authenticate(context.Context, string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reviews++
	switch {
	case a.err != nil:
		return "", a.err
	case a.refused:
		return "", fmt.Errorf("%w: pod lc-1 not found", ErrUnauthenticated)
	case a.node != "":
		return a.node, nil
	}
	return "node-a", nil
}

func (a *switchAuth) set(f func(*switchAuth)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

// waitClosed reads until the server closes the connection and returns the close error.
func waitClosed(t *testing.T, lc *testLC, within time.Duration) error {
	t.Helper()
	require.NoError(t, lc.ws.SetReadDeadline(time.Now().Add(within)))
	for {
		if _, _, err := lc.ws.ReadMessage(); err != nil {
			return err
		}
	}
}

func TestAConnectionEndsWhenItsTokenExpires(t *testing.T) {
	auth := &switchAuth{}
	ts := newTestServerWith(t, Options{CredentialRecheck: time.Hour}, auth, nil)
	// exp has a resolution of seconds: the token expires within 1 to 2 seconds.
	lc, _, err := ts.dial(t, jwtExpiring(time.Now().Add(1500*time.Millisecond)), nil)
	require.NoError(t, err)
	lc.readSnapshot()

	err = waitClosed(t, lc, 5*time.Second)
	var closeErr *websocket.CloseError
	require.ErrorAs(t, err, &closeErr, "the server closed the connection with a reason, not a timeout")
	require.Equal(t, websocket.ClosePolicyViolation, closeErr.Code)
	require.Contains(t, closeErr.Text, "token expired")
	require.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.CredentialCloses.WithLabelValues(closeTokenExpired)))
	require.Eventually(t, func() bool { return len(ts.hub.ConnectedNodes()) == 0 }, 5*time.Second, 10*time.Millisecond)

	// The LC reconnects with its current token.
	lc, _, err = ts.dial(t, jwtExpiring(time.Now().Add(time.Hour)), nil)
	require.NoError(t, err)
	lc.readSnapshot()
	require.Equal(t, []string{"node-a"}, ts.hub.ConnectedNodes())
}

func TestAConnectionEndsWhenItsTokenIsNoLongerAccepted(t *testing.T) {
	auth := &switchAuth{}
	ts := newTestServerWith(t, Options{CredentialRecheck: 100 * time.Millisecond}, auth, nil)
	lc := ts.connect(t, "node-a")
	lc.readSnapshot()

	// A review that cannot decide (the API server is away) keeps the connection.
	auth.set(func(a *switchAuth) { a.err = errors.New("connection refused") })
	require.Eventually(t, func() bool {
		auth.mu.Lock()
		defer auth.mu.Unlock()
		return auth.reviews >= 4
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"node-a"}, ts.hub.ConnectedNodes())
	lc.report(1, "d", `{"numberOfSamples":1}`) // not bound: rejected, but answered
	require.Equal(t, uint64(1), lc.read().Ack, "the connection still works")

	// The LC's pod is deleted: the API server refuses the token on the next review.
	auth.set(func(a *switchAuth) { a.err, a.refused = nil, true })
	err := waitClosed(t, lc, 5*time.Second)
	var closeErr *websocket.CloseError
	require.ErrorAs(t, err, &closeErr)
	require.Contains(t, closeErr.Text, "token refused")
	require.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.CredentialCloses.WithLabelValues(closeTokenRefused)))
}

func TestTokenExpiryIsReadFromTheReviewedToken(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	jwt := func(payload string) string {
		return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".c2ln"
	}
	require.Equal(t, time.Unix(1767225600, 0), TokenExpiry(jwt(`{"exp":1767225600,"kubernetes.io":{"pod":{"name":"lc-1"}}}`)))
	require.True(t, TokenExpiry(jwt(`{"sub":"x"}`)).IsZero(), "no exp")
	require.True(t, TokenExpiry(jwt(`{"exp":"soon"}`)).IsZero(), "exp not a number")
	require.True(t, TokenExpiry("not-a-jwt").IsZero())
	require.True(t, TokenExpiry("a.!!!.c").IsZero(), "payload not base64url")
}

// TestTheRecheckBypassesTheTokenCache: with GM's token cache in front of the review, and a
// cache TTL far longer than the recheck period, a revoked token still ends the connection at the
// next recheck, and the LC cannot reconnect with it from the cache.
func TestTheRecheckBypassesTheTokenCache(t *testing.T) {
	reviews := &switchAuth{}
	auth := &CachingAuthenticator{Next: reviews, TTL: time.Hour, MaxEntries: 10}
	ts := newTestServerWith(t, Options{CredentialRecheck: 100 * time.Millisecond}, auth, nil)
	lc := ts.connect(t, "node-a")
	lc.readSnapshot()

	reviews.set(func(a *switchAuth) { a.refused = true })
	err := waitClosed(t, lc, 3*time.Second)
	var closeErr *websocket.CloseError
	require.ErrorAs(t, err, &closeErr, "the cached acceptance kept the revoked token's connection")
	require.Contains(t, closeErr.Text, "token refused")

	_, resp, err := ts.dial(t, "token-a", nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the cache still accepts the revoked token")
}

// TestAConnectionEndsWhenItsTokenNamesAnotherNode: a review naming another node than the one
// the connection is bound to closes it.
func TestAConnectionEndsWhenItsTokenNamesAnotherNode(t *testing.T) {
	auth := &switchAuth{}
	ts := newTestServerWith(t, Options{CredentialRecheck: 100 * time.Millisecond}, auth, nil)
	lc := ts.connect(t, "node-a")
	lc.readSnapshot()

	auth.set(func(a *switchAuth) { a.node = "node-b" })
	err := waitClosed(t, lc, 3*time.Second)
	var closeErr *websocket.CloseError
	require.ErrorAs(t, err, &closeErr)
	require.Equal(t, websocket.ClosePolicyViolation, closeErr.Code)
	require.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.CredentialCloses.WithLabelValues(closeNodeChanged)))
}
