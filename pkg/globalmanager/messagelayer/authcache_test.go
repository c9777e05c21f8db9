package messagelayer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// countingAuth accepts "good-*" tokens and JWT-shaped ones as node-a, refuses the rest, and
// counts reviews.
type countingAuth struct {
	mu      sync.Mutex
	reviews map[string]int
	refuse  map[string]bool
	err     error
}

// jwtExpiring is a JWT-shaped token (unsigned: only the authenticator judges it) expiring at exp.
func jwtExpiring(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(fmt.Sprintf(`{"exp":%d}`, exp.Unix()))) + ".c2ln"
}

func (a *countingAuth) Authenticate(_ context.Context, token string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reviews == nil {
		a.reviews = map[string]int{}
	}
	a.reviews[token]++
	if a.err != nil {
		return "", a.err
	}
	if a.refuse[token] || !(strings.HasPrefix(token, "good-") || strings.Count(token, ".") == 2) {
		return "", fmt.Errorf("%w: refused", ErrUnauthenticated)
	}
	return "node-a", nil
}

func (a *countingAuth) count(token string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reviews[token]
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCachingAuthenticatorHitsAndTTL(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	next := &countingAuth{}
	cache := &CachingAuthenticator{Next: next, TTL: 10 * time.Second, MaxEntries: 100, Now: clock.Now}
	ctx := context.Background()

	for range 5 {
		node, err := cache.Authenticate(ctx, "good-1")
		require.NoError(t, err)
		require.Equal(t, "node-a", node)
	}
	require.Equal(t, 1, next.count("good-1"), "reconnects within the TTL cost one review")

	clock.Step(9 * time.Second)
	_, err := cache.Authenticate(ctx, "good-1")
	require.NoError(t, err)
	require.Equal(t, 1, next.count("good-1"))

	clock.Step(time.Second)
	_, err = cache.Authenticate(ctx, "good-1")
	require.NoError(t, err)
	require.Equal(t, 2, next.count("good-1"), "after the TTL the token is reviewed again")
}

func TestCachingAuthenticatorNeverOutlivesTheToken(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	next := &countingAuth{}
	cache := &CachingAuthenticator{Next: next, TTL: time.Minute, MaxEntries: 100, Now: clock.Now}
	ctx := context.Background()
	token := jwtExpiring(time.Unix(1_000_000, 0).Add(2 * time.Second))

	_, err := cache.Authenticate(ctx, token)
	require.NoError(t, err)
	clock.Step(time.Second)
	_, err = cache.Authenticate(ctx, token)
	require.NoError(t, err)
	require.Equal(t, 1, next.count(token))

	// Past the token's expiry the cache asks again, although its TTL has not run out; the
	// reviewer now refuses the expired token.
	clock.Step(time.Second)
	next.mu.Lock()
	next.refuse = map[string]bool{token: true}
	next.mu.Unlock()
	_, err = cache.Authenticate(ctx, token)
	require.ErrorIs(t, err, ErrUnauthenticated)
	require.Equal(t, 2, next.count(token))
}

func TestCachingAuthenticatorDoesNotCacheRefusalsOrErrors(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	next := &countingAuth{}
	cache := &CachingAuthenticator{Next: next, TTL: time.Minute, MaxEntries: 100, Now: clock.Now}
	ctx := context.Background()

	for range 3 {
		_, err := cache.Authenticate(ctx, "forged")
		require.ErrorIs(t, err, ErrUnauthenticated)
	}
	require.Equal(t, 3, next.count("forged"), "a refused token is reviewed every time")
	require.Zero(t, cache.Len())

	// A review that fails to decide is not an acceptance either.
	next.mu.Lock()
	next.err = errors.New("apiserver unavailable")
	next.mu.Unlock()
	_, err := cache.Authenticate(ctx, "good-2")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrUnauthenticated)
	next.mu.Lock()
	next.err = nil
	next.mu.Unlock()
	_, err = cache.Authenticate(ctx, "good-2")
	require.NoError(t, err)
	require.Equal(t, 2, next.count("good-2"))

	// A token refused after its entry expired loses the entry.
	clock.Step(time.Minute)
	next.mu.Lock()
	next.refuse = map[string]bool{"good-2": true}
	next.mu.Unlock()
	_, err = cache.Authenticate(ctx, "good-2")
	require.ErrorIs(t, err, ErrUnauthenticated)
	_, err = cache.Authenticate(ctx, "good-2")
	require.ErrorIs(t, err, ErrUnauthenticated)
	require.Equal(t, 4, next.count("good-2"))
}

func TestCachingAuthenticatorIsBounded(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	cache := &CachingAuthenticator{Next: &countingAuth{}, TTL: time.Minute, MaxEntries: 3, Now: clock.Now}
	for i := range 50 {
		_, err := cache.Authenticate(context.Background(), fmt.Sprintf("good-%d", i))
		require.NoError(t, err)
		require.LessOrEqual(t, cache.Len(), 3)
	}
	require.Equal(t, 3, cache.Len())
}
