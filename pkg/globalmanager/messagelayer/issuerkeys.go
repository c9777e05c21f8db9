package messagelayer

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"k8s.io/client-go/rest"
)

// IssuerKeySource fetches the service-account issuer's identifier and public keys.
type IssuerKeySource interface {
	Fetch(ctx context.Context) (issuer string, keys *jose.JSONWebKeySet, err error)
}

// Paths kube-apiserver serves its service-account issuer discovery on (the built-in
// system:service-account-issuer-discovery ClusterRole grants get on both).
const (
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	JWKSPath                = "/openid/v1/jwks"
)

// APIServerIssuer reads the issuer from kube-apiserver's OpenID configuration and its keys from
// the API server's JWKS path, both through the Kubernetes client (its credentials and CA). The
// discovery document's jwks_uri may name an external address (--service-account-jwks-uri); the
// API server serves the same keys at JWKSPath regardless.
type APIServerIssuer struct {
	Client rest.Interface
}

// Fetch implements IssuerKeySource.
func (a APIServerIssuer) Fetch(ctx context.Context) (string, *jose.JSONWebKeySet, error) {
	raw, err := a.Client.Get().AbsPath(OpenIDConfigurationPath).Do(ctx).Raw()
	if err != nil {
		return "", nil, fmt.Errorf("reading %s: %w", OpenIDConfigurationPath, err)
	}
	var discovery struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &discovery); err != nil {
		return "", nil, fmt.Errorf("parsing %s: %w", OpenIDConfigurationPath, err)
	}
	raw, err = a.Client.Get().AbsPath(JWKSPath).Do(ctx).Raw()
	if err != nil {
		return "", nil, fmt.Errorf("reading %s: %w", JWKSPath, err)
	}
	var keys jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &keys); err != nil {
		return "", nil, fmt.Errorf("parsing %s: %w", JWKSPath, err)
	}
	return discovery.Issuer, &keys, nil
}

// IssuerKeys holds the service-account issuer's public keys by key ID. They are refreshed by
// Run; a token naming an unknown key fetches them again at most once per MinRefetch (the API
// server rotated its keys), and keys that could not be refreshed for MaxAge are not used (a key
// the API server no longer publishes must stop verifying tokens).
type IssuerKeys struct {
	Source IssuerKeySource
	// MinRefetch is the least time between two fetches for unknown key IDs; 10 s when zero.
	MinRefetch time.Duration
	// MaxAge is how long keys are used after their last successful fetch; 10 min when zero.
	MaxAge time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu        sync.RWMutex
	issuer    string
	keys      map[string]jose.JSONWebKey
	fetchedAt time.Time

	// fetchMu serialises fetches; attemptedAt is the last fetch's start.
	fetchMu     sync.Mutex
	attemptedAt time.Time
}

// Refresh fetches the issuer and keys now.
func (k *IssuerKeys) Refresh(ctx context.Context) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	return k.fetchLocked(ctx)
}

// fetchTimeout bounds one fetch of the issuer and keys: a slow API server must not hold the
// fetch lock, and the connections that wait on it, for its whole request timeout.
const fetchTimeout = 10 * time.Second

func (k *IssuerKeys) fetchLocked(ctx context.Context) error {
	k.attemptedAt = k.now()
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	issuer, set, err := k.Source.Fetch(ctx)
	if err != nil {
		return err
	}
	if issuer == "" {
		return errors.New("the OpenID configuration names no issuer")
	}
	keys := map[string]jose.JSONWebKey{}
	for _, key := range set.Keys {
		if key.KeyID == "" || !key.IsPublic() || !key.Valid() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		switch key.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
			keys[key.KeyID] = key
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("issuer %s publishes no RSA or ECDSA signing key", issuer)
	}
	k.mu.Lock()
	k.issuer, k.keys, k.fetchedAt = issuer, keys, k.now()
	k.mu.Unlock()
	return nil
}

// Issuer is the issuer's identifier, and false when no keys are fresh enough to use.
func (k *IssuerKeys) Issuer() (string, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.fetchedAt.IsZero() || k.now().Sub(k.fetchedAt) > k.maxAge() {
		return "", false
	}
	return k.issuer, true
}

// KeyLookup is what Key found out about a key ID.
type KeyLookup int

const (
	// KeyFound: the key is published and fresh.
	KeyFound KeyLookup = iota
	// KeyUnknown: a fetch made for this lookup succeeded and the issuer does not publish it.
	KeyUnknown
	// KeyUndecided: not known now, and no fetch could tell (another fetch running, the last one
	// younger than MinRefetch, or the fetch failed): TokenReview decides.
	KeyUndecided
)

// Key returns the key kid. An unknown kid fetches the keys again, when no fetch is running and
// the last one is older than MinRefetch; only a fetch made for this lookup can say the key is
// unknown, so a rotation, or a flood of made-up key IDs, never refuses a token signed with a
// key the issuer has just published.
func (k *IssuerKeys) Key(ctx context.Context, kid string) (jose.JSONWebKey, KeyLookup) {
	if key, ok := k.lookup(kid); ok {
		return key, KeyFound
	}
	if !k.fetchMu.TryLock() {
		return jose.JSONWebKey{}, KeyUndecided
	}
	defer k.fetchMu.Unlock()
	if key, ok := k.lookup(kid); ok { // fetched just before this lookup took the lock
		return key, KeyFound
	}
	minRefetch := k.MinRefetch
	if minRefetch <= 0 {
		minRefetch = 10 * time.Second
	}
	if k.now().Sub(k.attemptedAt) < minRefetch {
		return jose.JSONWebKey{}, KeyUndecided
	}
	if err := k.fetchLocked(ctx); err != nil {
		return jose.JSONWebKey{}, KeyUndecided
	}
	if key, ok := k.lookup(kid); ok {
		return key, KeyFound
	}
	return jose.JSONWebKey{}, KeyUnknown
}

func (k *IssuerKeys) lookup(kid string) (jose.JSONWebKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.fetchedAt.IsZero() || k.now().Sub(k.fetchedAt) > k.maxAge() {
		return jose.JSONWebKey{}, false
	}
	key, ok := k.keys[kid]
	return key, ok
}

// Run refreshes the keys every period until ctx ends; report gets each attempt's result.
func (k *IssuerKeys) Run(ctx context.Context, period time.Duration, report func(error)) {
	for {
		report(k.Refresh(ctx))
		timer := time.NewTimer(period)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

func (k *IssuerKeys) maxAge() time.Duration {
	if k.MaxAge > 0 {
		return k.MaxAge
	}
	return 10 * time.Minute
}

func (k *IssuerKeys) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}
