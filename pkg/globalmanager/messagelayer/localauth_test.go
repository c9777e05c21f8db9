package messagelayer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const testIssuer = "https://kubernetes.default.svc.cluster.local"

// testKeys are the issuer's signing keys and one key of nobody.
type testKeys struct {
	rsa, ec, stranger crypto.Signer
}

var generatedKeys = sync.OnceValue(func() testKeys {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return testKeys{rsa: rsaKey, ec: ecKey, stranger: stranger}
})

// fakeIssuer serves a key set and counts fetches.
type fakeIssuer struct {
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	err     error
	fetches int
}

func (f *fakeIssuer) Fetch(context.Context) (string, *jose.JSONWebKeySet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	if f.err != nil {
		return "", nil, f.err
	}
	return testIssuer, &jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), f.keys...)}, nil
}

func (f *fakeIssuer) fetchCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches
}

func publicJWK(key crypto.Signer, kid string, alg jose.SignatureAlgorithm) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}
}

// fakeIdentities is an LCIdentities over maps.
type fakeIdentities struct {
	synced   bool
	accounts map[string]*corev1.ServiceAccount
	pods     map[string]*corev1.Pod
}

func (f *fakeIdentities) Synced() bool { return f.synced }
func (f *fakeIdentities) ServiceAccount(namespace, name string) (*corev1.ServiceAccount, bool) {
	sa, ok := f.accounts[namespace+"/"+name]
	return sa, ok
}

// Pod ignores serviceAccount (the informer lists only pods running as it), so that the
// verifier's own check of the pod's service account is tested.
func (f *fakeIdentities) Pod(namespace, _, name string) (*corev1.Pod, bool) {
	pod, ok := f.pods[namespace+"/"+name]
	return pod, ok
}

func lcIdentities() *fakeIdentities {
	return &fakeIdentities{
		synced: true,
		accounts: map[string]*corev1.ServiceAccount{
			"sedna/sedna-lc": {ObjectMeta: metav1.ObjectMeta{Namespace: "sedna", Name: "sedna-lc", UID: "sa-uid"}},
		},
		pods: map[string]*corev1.Pod{
			"sedna/lc-1": {ObjectMeta: metav1.ObjectMeta{Namespace: "sedna", Name: "lc-1", UID: "pod-uid"},
				Spec: corev1.PodSpec{NodeName: "edge-1", ServiceAccountName: "sedna-lc"}},
		},
	}
}

// lcClaims are the claims kube-apiserver (≥ 1.32) puts in a token bound to pod lc-1 on edge-1.
func lcClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"sub": "system:serviceaccount:sedna:sedna-lc",
		"aud": []string{"sedna-gm"},
		"exp": now.Add(time.Hour).Unix(),
		"nbf": now.Unix(),
		"iat": now.Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "sedna",
			"serviceaccount": map[string]any{"name": "sedna-lc", "uid": "sa-uid"},
			"pod":            map[string]any{"name": "lc-1", "uid": "pod-uid"},
			"node":           map[string]any{"name": "edge-1", "uid": "node-uid"},
		},
	}
}

func kubernetesClaim(c map[string]any) map[string]any { return c["kubernetes.io"].(map[string]any) }

func sign(t *testing.T, key any, kid string, alg jose.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	require.NoError(t, err)
	return token
}

// unsigned is an alg "none" JWT, which go-jose refuses to produce.
func unsigned(t *testing.T, claims map[string]any) string {
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","kid":"rsa-1"}`)) + "." + enc(payload) + "."
}

type verifierFixture struct {
	verifier *LocalTokenVerifier
	issuer   *fakeIssuer
	ids      *fakeIdentities
	now      time.Time
}

func newVerifierFixture(t *testing.T) *verifierFixture {
	keys := generatedKeys()
	f := &verifierFixture{
		issuer: &fakeIssuer{keys: []jose.JSONWebKey{publicJWK(keys.rsa, "rsa-1", jose.RS256), publicJWK(keys.ec, "ec-1", jose.ES256)}},
		ids:    lcIdentities(),
		now:    time.Now(),
	}
	clock := func() time.Time { return f.now }
	issuerKeys := &IssuerKeys{Source: f.issuer, MinRefetch: 10 * time.Second, MaxAge: 10 * time.Minute, Now: clock}
	require.NoError(t, issuerKeys.Refresh(context.Background()))
	f.verifier = &LocalTokenVerifier{Audience: "sedna-gm", ServiceAccounts: []string{"sedna/sedna-lc"},
		Keys: issuerKeys, Identities: f.ids, Now: clock}
	return f
}

func TestLocalTokenVerifierAcceptsAPodBoundToken(t *testing.T) {
	keys := generatedKeys()
	for name, token := range map[string]func(*testing.T, time.Time) string{
		"RS256": func(t *testing.T, now time.Time) string { return sign(t, keys.rsa, "rsa-1", jose.RS256, lcClaims(now)) },
		"ES256": func(t *testing.T, now time.Time) string { return sign(t, keys.ec, "ec-1", jose.ES256, lcClaims(now)) },
	} {
		t.Run(name, func(t *testing.T) {
			f := newVerifierFixture(t)
			node, err := f.verifier.Authenticate(context.Background(), token(t, f.now))
			require.NoError(t, err)
			require.Equal(t, "edge-1", node, "the node comes from the token, checked against the pod")
			require.Equal(t, 1, f.issuer.fetchCount(), "a known key needs no fetch")
		})
	}
}

func TestLocalTokenVerifierRefusals(t *testing.T) {
	keys := generatedKeys()
	hmacKey := []byte("a shared secret of thirty-two by")
	cases := map[string]struct {
		// token builds the token from the valid claims (already changed by claims).
		claims func(c map[string]any, now time.Time)
		ids    func(ids *fakeIdentities, now time.Time)
		token  func(t *testing.T, c map[string]any) string
		want   string
	}{
		"bad signature": {
			token: func(t *testing.T, c map[string]any) string { return sign(t, keys.stranger, "rsa-1", jose.RS256, c) },
			want:  "verifying the token's signature",
		},
		"payload changed after signing": {
			token: func(t *testing.T, c map[string]any) string {
				signed := sign(t, keys.rsa, "rsa-1", jose.RS256, c)
				kubernetesClaim(c)["node"] = map[string]any{"name": "edge-2"}
				forged := sign(t, keys.stranger, "rsa-1", jose.RS256, c)
				return splitJWT(signed)[0] + "." + splitJWT(forged)[1] + "." + splitJWT(signed)[2]
			},
			want: "verifying the token's signature",
		},
		"alg none": {
			token: unsigned,
			want:  `algorithm "none" is not accepted`,
		},
		"alg HS256": {
			token: func(t *testing.T, c map[string]any) string { return sign(t, hmacKey, "rsa-1", jose.HS256, c) },
			want:  `algorithm "HS256" is not accepted`,
		},
		"ES256 header on an RSA key": {
			token: func(t *testing.T, c map[string]any) string { return sign(t, keys.ec, "rsa-1", jose.ES256, c) },
			want:  "key \"rsa-1\" is for RS256",
		},
		"wrong audience": {
			claims: func(c map[string]any, _ time.Time) { c["aud"] = []string{"kubernetes"} },
			want:   `do not include "sedna-gm"`,
		},
		"expired": {
			claims: func(c map[string]any, now time.Time) { c["exp"] = now.Add(-2 * time.Minute).Unix() },
			want:   "the token expired",
		},
		"nbf in the future": {
			claims: func(c map[string]any, now time.Time) { c["nbf"] = now.Add(2 * time.Minute).Unix() },
			want:   "not valid before",
		},
		"iat in the future": {
			claims: func(c map[string]any, now time.Time) { c["iat"] = now.Add(2 * time.Minute).Unix() },
			want:   "issued in the future",
		},
		"another service account": {
			claims: func(c map[string]any, _ time.Time) {
				c["sub"] = "system:serviceaccount:sedna:workload"
				kubernetesClaim(c)["serviceaccount"] = map[string]any{"name": "workload", "uid": "w-uid"}
			},
			want: "is not an LC service account",
		},
		"subject disagrees with the service account claim": {
			claims: func(c map[string]any, _ time.Time) { c["sub"] = "system:serviceaccount:sedna:other" },
			want:   "does not match the token's service account",
		},
		"service account missing": {
			ids:  func(ids *fakeIdentities, _ time.Time) { delete(ids.accounts, "sedna/sedna-lc") },
			want: "service account sedna/sedna-lc does not exist",
		},
		"service account UID mismatch (recreated)": {
			ids:  func(ids *fakeIdentities, _ time.Time) { ids.accounts["sedna/sedna-lc"].UID = "new-sa-uid" },
			want: "has UID new-sa-uid, the token's is sa-uid",
		},
		"pod missing": {
			ids:  func(ids *fakeIdentities, _ time.Time) { delete(ids.pods, "sedna/lc-1") },
			want: "pod sedna/lc-1 of the token does not exist",
		},
		"pod UID mismatch (recreated)": {
			ids:  func(ids *fakeIdentities, _ time.Time) { ids.pods["sedna/lc-1"].UID = "new-pod-uid" },
			want: "has UID new-pod-uid, the token's is pod-uid",
		},
		"pod deleted over a minute ago": {
			ids: func(ids *fakeIdentities, now time.Time) {
				ids.pods["sedna/lc-1"].DeletionTimestamp = &metav1.Time{Time: now.Add(-2 * time.Minute)}
			},
			want: "pod sedna/lc-1 is deleted",
		},
		"pod on another node": {
			ids:  func(ids *fakeIdentities, _ time.Time) { ids.pods["sedna/lc-1"].Spec.NodeName = "edge-2" },
			want: `is on node "edge-2", the token names "edge-1"`,
		},
		"pod running as another service account": {
			ids:  func(ids *fakeIdentities, _ time.Time) { ids.pods["sedna/lc-1"].Spec.ServiceAccountName = "other" },
			want: `runs as "other", not as the token's service account`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newVerifierFixture(t)
			claims := lcClaims(f.now)
			if tc.claims != nil {
				tc.claims(claims, f.now)
			}
			if tc.ids != nil {
				tc.ids(f.ids, f.now)
			}
			token := sign(t, keys.rsa, "rsa-1", jose.RS256, claims)
			if tc.token != nil {
				token = tc.token(t, claims)
			}
			_, err := f.verifier.Authenticate(context.Background(), token)
			require.ErrorIs(t, err, ErrUnauthenticated)
			require.NotErrorIs(t, err, ErrUndecided, "a refusal is final")
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestLocalTokenVerifierLeavesToTokenReview: what the local check cannot decide, TokenReview
// decides; the verifier neither accepts nor refuses it.
func TestLocalTokenVerifierLeavesToTokenReview(t *testing.T) {
	keys := generatedKeys()
	cases := map[string]struct {
		claims func(c map[string]any)
		ids    func(ids *fakeIdentities)
		token  func(t *testing.T, c map[string]any) string
		setup  func(f *verifierFixture)
		want   string
	}{
		"not a JWT":      {token: func(*testing.T, map[string]any) string { return "opaque-token" }, want: "not a JWT"},
		"another issuer": {claims: func(c map[string]any) { c["iss"] = "https://oidc.example" }, want: "is not the service-account issuer"},
		"legacy secret token": {
			claims: func(c map[string]any) {
				k := kubernetesClaim(c)
				delete(k, "pod")
				k["secret"] = map[string]any{"name": "sedna-lc-token", "uid": "s-uid"}
			},
			want: "not bound to a pod",
		},
		"bound to a node, not a pod": {claims: func(c map[string]any) { delete(kubernetesClaim(c), "pod") }, want: "not bound to a pod"},
		"no node claim (API server before 1.32)": {
			claims: func(c map[string]any) { delete(kubernetesClaim(c), "node") },
			want:   "names no node",
		},
		"an asymmetric algorithm not verified here": {
			token: func(t *testing.T, c map[string]any) string { return sign(t, keys.rsa, "rsa-1", jose.RS384, c) },
			want:  `algorithm "RS384" is not verified locally`,
		},
		"no key id": {
			token: func(t *testing.T, c map[string]any) string { return sign(t, keys.rsa, "", jose.RS256, c) },
			want:  "names no signing key",
		},
		"informers not synced": {ids: func(ids *fakeIdentities) { ids.synced = false }, want: "not listed yet"},
		"keys older than MaxAge": {
			setup: func(f *verifierFixture) { f.issuer.err = errors.New("forbidden"); f.now = f.now.Add(11 * time.Minute) },
			want:  "keys are not known",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newVerifierFixture(t)
			claims := lcClaims(f.now)
			if tc.claims != nil {
				tc.claims(claims)
			}
			if tc.ids != nil {
				tc.ids(f.ids)
			}
			token := sign(t, keys.rsa, "rsa-1", jose.RS256, claims)
			if tc.token != nil {
				token = tc.token(t, claims)
			}
			if tc.setup != nil {
				tc.setup(f)
			}
			_, err := f.verifier.Authenticate(context.Background(), token)
			require.ErrorIs(t, err, ErrUndecided)
			require.NotErrorIs(t, err, ErrUnauthenticated)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLocalTokenVerifierWithoutKeysLeavesEverythingToTokenReview(t *testing.T) {
	keys := generatedKeys()
	issuer := &fakeIssuer{err: errors.New(`the server does not allow access to the requested resource ("get /.well-known/openid-configuration")`)}
	issuerKeys := &IssuerKeys{Source: issuer}
	require.Error(t, issuerKeys.Refresh(context.Background()))
	v := &LocalTokenVerifier{Audience: "sedna-gm", ServiceAccounts: []string{"sedna/sedna-lc"}, Keys: issuerKeys, Identities: lcIdentities()}
	_, err := v.Authenticate(context.Background(), sign(t, keys.rsa, "rsa-1", jose.RS256, lcClaims(time.Now())))
	require.ErrorIs(t, err, ErrUndecided)
}

// TestUnknownKeyIDRefetchesTheKeysAtMostOncePerInterval: a token signed with a key the issuer
// has just added is accepted after one fetch; unknown key IDs fetch again at most once per
// MinRefetch, and are refused in between.
func TestUnknownKeyIDRefetchesTheKeysAtMostOncePerInterval(t *testing.T) {
	keys := generatedKeys()
	f := newVerifierFixture(t)
	ctx := context.Background()
	require.Equal(t, 1, f.issuer.fetchCount())

	// Rotation: the API server now signs with a new key, which GM has not fetched yet.
	rotated := generatedKeysRotated()
	f.issuer.mu.Lock()
	f.issuer.keys = append(f.issuer.keys, publicJWK(rotated, "rsa-2", jose.RS256))
	f.issuer.mu.Unlock()
	f.now = f.now.Add(11 * time.Second)
	node, err := f.verifier.Authenticate(ctx, sign(t, rotated, "rsa-2", jose.RS256, lcClaims(f.now)))
	require.NoError(t, err, "a rotated key is fetched")
	require.Equal(t, "edge-1", node)
	require.Equal(t, 2, f.issuer.fetchCount())

	// A key ID not known, within MinRefetch of the last fetch: no fetch at all, and TokenReview
	// decides (the issuer may have published it a moment ago; a flood of made-up key IDs must
	// not make GM refuse the tokens of a rotation).
	for range 5 {
		_, err = f.verifier.Authenticate(ctx, sign(t, keys.stranger, "unknown", jose.RS256, lcClaims(f.now)))
		require.ErrorIs(t, err, ErrUndecided)
		require.NotErrorIs(t, err, ErrUnauthenticated)
	}
	require.Equal(t, 2, f.issuer.fetchCount(), "unknown key IDs must not fetch more than once per MinRefetch")

	// After MinRefetch it fetches once more; the issuer does not publish it: refused.
	f.now = f.now.Add(11 * time.Second)
	_, err = f.verifier.Authenticate(ctx, sign(t, keys.stranger, "unknown", jose.RS256, lcClaims(f.now)))
	require.ErrorIs(t, err, ErrUnauthenticated)
	require.ErrorContains(t, err, `signed with key "unknown", which the service-account issuer does not publish`)
	require.Equal(t, 3, f.issuer.fetchCount(), "after MinRefetch an unknown key ID fetches once more")

	// A fetch that fails cannot say the key is unknown: TokenReview decides.
	f.issuer.mu.Lock()
	f.issuer.err = errors.New("the API server is restarting")
	f.issuer.mu.Unlock()
	f.now = f.now.Add(11 * time.Second)
	_, err = f.verifier.Authenticate(ctx, sign(t, keys.stranger, "unknown", jose.RS256, lcClaims(f.now)))
	require.ErrorIs(t, err, ErrUndecided)
	require.Equal(t, 4, f.issuer.fetchCount())
	f.issuer.mu.Lock()
	f.issuer.err = nil
	f.issuer.mu.Unlock()

	// Keys the issuer stops publishing stop verifying at the next fetch.
	f.issuer.mu.Lock()
	f.issuer.keys = []jose.JSONWebKey{publicJWK(rotated, "rsa-2", jose.RS256)}
	f.issuer.mu.Unlock()
	require.NoError(t, f.verifier.Keys.Refresh(ctx))
	_, err = f.verifier.Authenticate(ctx, sign(t, keys.rsa, "rsa-1", jose.RS256, lcClaims(f.now)))
	require.ErrorIs(t, err, ErrUndecided, "a withdrawn key must not verify; just after a fetch, TokenReview decides")
	f.now = f.now.Add(11 * time.Second)
	_, err = f.verifier.Authenticate(ctx, sign(t, keys.rsa, "rsa-1", jose.RS256, lcClaims(f.now)))
	require.ErrorIs(t, err, ErrUnauthenticated, "a withdrawn key must not verify")
}

var generatedKeysRotated = sync.OnceValue(func() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
})

func TestIssuerKeysSkipKeysThatCannotVerify(t *testing.T) {
	keys := generatedKeys()
	issuer := &fakeIssuer{keys: []jose.JSONWebKey{
		{Key: keys.rsa.Public(), KeyID: "enc", Use: "enc"},
		{Key: keys.rsa.Public(), Use: "sig"}, // no kid
		{Key: []byte("shared"), KeyID: "hmac", Use: "sig"},
	}}
	err := (&IssuerKeys{Source: issuer}).Refresh(context.Background())
	require.ErrorContains(t, err, "publishes no RSA or ECDSA signing key")
}

func splitJWT(token string) [3]string {
	var out [3]string
	i := 0
	for _, r := range token {
		if r == '.' {
			i++
			continue
		}
		out[i] += string(r)
	}
	return out
}

// scriptedAuth answers with a fixed result and counts calls and rechecks.
type scriptedAuth struct {
	node            string
	err             error
	calls, rechecks int
}

func (a *scriptedAuth) Authenticate(context.Context, string) (string, error) {
	a.calls++
	return a.node, a.err
}

func (a *scriptedAuth) Recheck(context.Context, string) (string, error) {
	a.rechecks++
	return a.node, a.err
}

func TestLocalFirstAsksTokenReviewOnlyWhenLocalCannotDecide(t *testing.T) {
	refused := errors.Join(ErrUnauthenticated, errors.New("pod gone"))
	cases := map[string]struct {
		local        *scriptedAuth
		wantNode     string
		wantErr      error
		wantFallback bool
	}{
		"local accepts":   {local: &scriptedAuth{node: "edge-1"}, wantNode: "edge-1"},
		"local refuses":   {local: &scriptedAuth{err: refused}, wantErr: ErrUnauthenticated},
		"local undecided": {local: &scriptedAuth{err: undecided("not a JWT")}, wantNode: "edge-9", wantFallback: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for _, recheck := range []bool{false, true} {
				local := *tc.local
				fallback := &scriptedAuth{node: "edge-9"}
				metrics := NewMetrics(nil)
				auth := &LocalFirstAuthenticator{Local: &local, Fallback: fallback, Metrics: metrics}
				var node string
				var err error
				if recheck {
					node, err = reviewAfresh(context.Background(), auth, "token")
				} else {
					node, err = auth.Authenticate(context.Background(), "token")
				}
				if tc.wantErr != nil {
					require.ErrorIs(t, err, tc.wantErr)
				} else {
					require.NoError(t, err)
				}
				require.Equal(t, tc.wantNode, node)
				asked := fallback.calls + fallback.rechecks
				if !tc.wantFallback {
					require.Zero(t, asked, "TokenReview asked though the local check decided")
					continue
				}
				require.Equal(t, 1, asked)
				if recheck {
					require.Equal(t, 1, fallback.rechecks, "a recheck reviews afresh, bypassing the cache")
				}
			}
		})
	}
}

func TestInformerLCIdentitiesTrimsWhatItCaches(t *testing.T) {
	now := metav1.Now()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "lc-1", Namespace: "sedna", UID: types.UID("u"), DeletionTimestamp: &now,
		Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"big": "x"}},
		Spec: corev1.PodSpec{NodeName: "edge-1", ServiceAccountName: "sedna-lc", Containers: []corev1.Container{{Name: "lc"}}}}
	trimmed, err := trimPod(pod)
	require.NoError(t, err)
	got := trimmed.(*corev1.Pod)
	require.Equal(t, "edge-1", got.Spec.NodeName)
	require.Equal(t, "sedna-lc", got.Spec.ServiceAccountName)
	require.Equal(t, types.UID("u"), got.UID)
	require.Equal(t, &now, got.DeletionTimestamp)
	require.Empty(t, got.Spec.Containers)
	require.Empty(t, got.Annotations)
}

// TestAKeyLookupNeverWaitsForAFetchInProgress: while one fetch runs (a slow API server), a
// lookup of an unknown key ID leaves the token to TokenReview instead of queueing behind it.
func TestAKeyLookupNeverWaitsForAFetchInProgress(t *testing.T) {
	f := newVerifierFixture(t)
	f.now = f.now.Add(time.Minute)
	f.verifier.Keys.fetchMu.Lock()
	_, lookup := f.verifier.Keys.Key(context.Background(), "rotated")
	f.verifier.Keys.fetchMu.Unlock()
	require.Equal(t, KeyUndecided, lookup)
	require.Equal(t, 1, f.issuer.fetchCount(), "the lookup fetched while another fetch held the lock")
}
