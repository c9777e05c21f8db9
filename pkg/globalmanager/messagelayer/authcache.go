package messagelayer

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// CachingAuthenticator remembers accepted tokens for a short time, so that a thousand LCs
// reconnecting after a failover, or one LC reconnecting in a loop, cost one review per token and
// TTL rather than one per connect. Only acceptances are cached, keyed by the token's SHA-256 (the
// token itself is not kept), never past the token's expiry, and at most MaxEntries of them.
type CachingAuthenticator struct {
	Next       Authenticator
	TTL        time.Duration
	MaxEntries int
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedNode
}

type cachedNode struct {
	node  string
	until time.Time
}

// Authenticate implements Authenticator.
func (c *CachingAuthenticator) Authenticate(ctx context.Context, token string) (string, error) {
	key := sha256.Sum256([]byte(token))
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.node, nil
	}
	node, err := c.Next.Authenticate(ctx, token)
	if err != nil {
		if ok {
			c.mu.Lock()
			delete(c.entries, key)
			c.mu.Unlock()
		}
		return "", err
	}
	until := now.Add(c.TTL)
	if expires := TokenExpiry(token); !expires.IsZero() && expires.Before(until) {
		until = expires
	}
	if c.TTL > 0 && now.Before(until) {
		c.store(key, cachedNode{node: node, until: until}, now)
	}
	return node, nil
}

// Recheck implements Rechecker: it always asks Next, so a periodic recheck sees a revoked token
// however long the cache would have remembered it. A refusal drops the cached acceptance (the LC
// cannot reconnect with the token either); an acceptance refreshes it.
func (c *CachingAuthenticator) Recheck(ctx context.Context, token string) (string, error) {
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
	return c.Authenticate(ctx, token)
}

// store adds an entry, first dropping expired ones and then, if still full, arbitrary ones: the
// cache only saves reviews, so losing an entry costs one review.
func (c *CachingAuthenticator) store(key [sha256.Size]byte, e cachedNode, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]cachedNode{}
	}
	limit := max(c.MaxEntries, 1)
	if _, present := c.entries[key]; !present && len(c.entries) >= limit {
		for k, old := range c.entries {
			if !now.Before(old.until) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < limit {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = e
}

// Len is the number of cached tokens.
func (c *CachingAuthenticator) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *CachingAuthenticator) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
