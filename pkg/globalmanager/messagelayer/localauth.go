package messagelayer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	corev1 "k8s.io/api/core/v1"
)

// ErrUndecided is wrapped by a LocalTokenVerifier's answer when it cannot decide about a token
// (not a service-account JWT of this cluster's issuer, not bound to a pod, the issuer's keys or
// the LC pods not known yet): TokenReview decides instead.
var ErrUndecided = errors.New("not decidable locally")

// tokenLeeway is the clock skew allowed on exp, nbf and iat: the API server's own (go-jose's
// default leeway, which kube-apiserver's service-account validator uses), so that GM accepts no
// token the API server would find expired.
const tokenLeeway = jwt.DefaultLeeway

// LCIdentities is what GM knows, from its informers, about the LCs' service accounts and pods.
type LCIdentities interface {
	// Synced reports whether the informers have listed everything once.
	Synced() bool
	// ServiceAccount is the service account namespace/name, if it exists.
	ServiceAccount(namespace, name string) (*corev1.ServiceAccount, bool)
	// Pod is the pod namespace/name running as the service account, if it exists.
	Pod(namespace, serviceAccount, name string) (*corev1.Pod, bool)
}

// LocalTokenVerifier verifies LC tokens as kube-apiserver verifies bound service-account tokens,
// without asking it: the JWT's signature against the service-account issuer's public keys
// (RS256 or ES256), its issuer, audience and validity period, and then that the service account
// and the pod the token is bound to exist now, with the token's UIDs, the pod on the token's node
// and running as the token's service account. A new leader thus admits thousands of LCs without
// a TokenReview each.
//
// It is never more lenient than TokenReview: what it cannot decide (a token that is not a JWT,
// another issuer, no pod binding, keys or informers not ready) is answered with ErrUndecided, and
// LocalFirstAuthenticator then asks TokenReview. Its refusals wrap ErrUnauthenticated.
type LocalTokenVerifier struct {
	// Audience must be among the token's audiences.
	Audience string
	// ServiceAccounts ("namespace/name") are the LCs' service accounts; required (Identities
	// watches only their pods).
	ServiceAccounts []string
	Keys            *IssuerKeys
	Identities      LCIdentities
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// serviceAccountClaims are the claims kube-apiserver puts in a bound service-account token.
type serviceAccountClaims struct {
	jwt.Claims
	Kubernetes struct {
		Namespace      string     `json:"namespace"`
		ServiceAccount objectRef  `json:"serviceaccount"`
		Pod            *objectRef `json:"pod"`
		Secret         *objectRef `json:"secret"`
		Node           *objectRef `json:"node"`
	} `json:"kubernetes.io"`
}

type objectRef struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// verifiedAlgorithms are the signatures kube-apiserver makes with the keys it serves.
var verifiedAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthenticated, fmt.Sprintf(format, args...))
}

// clipHeader bounds a value taken from a token's unverified header before it is logged: a
// client chooses it, up to the header's size.
func clipHeader(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

func undecided(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUndecided, fmt.Sprintf(format, args...))
}

// Authenticate implements Authenticator: the node the token's pod is bound to, a refusal
// (ErrUnauthenticated) or ErrUndecided.
func (v *LocalTokenVerifier) Authenticate(ctx context.Context, token string) (string, error) {
	alg, kid, err := jwsHeader(token)
	if err != nil {
		return "", undecided("%v", err)
	}
	switch {
	case alg == string(jose.RS256) || alg == string(jose.ES256):
	case alg == "" || strings.EqualFold(alg, "none") || strings.HasPrefix(strings.ToUpper(alg), "HS"):
		// Unsigned or signed with a shared secret: never a service-account token.
		return "", refuse("token signature algorithm %q is not accepted", clipHeader(alg))
	default:
		// An asymmetric algorithm kube-apiserver may verify with keys GM does not check here
		// (an external signer's RS384, ES384, PS256, ...).
		return "", undecided("signature algorithm %q is not verified locally", clipHeader(alg))
	}
	issuer, ok := v.Keys.Issuer()
	if !ok {
		return "", undecided("the service-account issuer's keys are not known")
	}
	parsed, err := jwt.ParseSigned(token, verifiedAlgorithms)
	if err != nil {
		return "", undecided("parsing the JWT: %v", err)
	}
	var unverified serviceAccountClaims
	if err := parsed.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return "", undecided("reading the JWT's claims: %v", err)
	}
	if unverified.Issuer != issuer {
		// The API server may accept more issuers than the one it serves keys for (issuer
		// migration), and other authenticators (OIDC) sign JWTs too: TokenReview decides.
		return "", undecided("issuer %q is not the service-account issuer %q", clipHeader(unverified.Issuer), issuer)
	}
	if kid == "" {
		return "", undecided("the token names no signing key")
	}
	key, lookup := v.Keys.Key(ctx, kid)
	switch lookup {
	case KeyUnknown:
		return "", refuse("the token is signed with key %q, which the service-account issuer does not publish", clipHeader(kid))
	case KeyUndecided:
		return "", undecided("key %q is not known yet and the issuer's keys cannot be fetched again now", clipHeader(kid))
	}
	if key.Algorithm != "" && key.Algorithm != alg {
		return "", refuse("the token is signed with %s, key %q is for %s", alg, clipHeader(kid), key.Algorithm)
	}
	var claims serviceAccountClaims
	if err := parsed.Claims(key.Key, &claims); err != nil {
		return "", refuse("verifying the token's signature with key %q: %v", clipHeader(kid), err)
	}
	now := v.now()
	if claims.Expiry == nil {
		return "", undecided("the token has no expiry")
	}
	switch err := claims.ValidateWithLeeway(jwt.Expected{Time: now}, tokenLeeway); {
	case errors.Is(err, jwt.ErrExpired):
		return "", refuse("the token expired at %s", claims.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet):
		return "", refuse("the token is not valid before %s", claims.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return "", refuse("the token is issued in the future (%s)", claims.IssuedAt.Time().UTC().Format(time.RFC3339))
	case err != nil:
		return "", refuse("the token's claims: %v", err)
	}
	if !claims.Audience.Contains(v.Audience) {
		return "", refuse("token audiences %v do not include %q", []string(claims.Audience), v.Audience)
	}
	k := claims.Kubernetes
	if k.Namespace == "" || k.ServiceAccount.Name == "" || k.ServiceAccount.UID == "" ||
		claims.Subject != "system:serviceaccount:"+k.Namespace+":"+k.ServiceAccount.Name {
		return "", refuse("subject %q does not match the token's service account %s/%s", claims.Subject, k.Namespace, k.ServiceAccount.Name)
	}
	if !slices.Contains(v.ServiceAccounts, k.Namespace+"/"+k.ServiceAccount.Name) {
		return "", refuse("%s is not an LC service account (%v)", claims.Subject, v.ServiceAccounts)
	}
	if k.Pod == nil || k.Secret != nil {
		return "", undecided("the token is not bound to a pod")
	}
	if k.Node == nil || k.Node.Name == "" {
		// Tokens of API servers before the node claim: TokenReview names no node for them either.
		return "", undecided("the token names no node")
	}
	if !v.Identities.Synced() {
		return "", undecided("the LC pods and service accounts are not listed yet")
	}
	deletedBefore := now.Add(-tokenLeeway)
	sa, ok := v.Identities.ServiceAccount(k.Namespace, k.ServiceAccount.Name)
	switch {
	case !ok:
		return "", refuse("service account %s/%s does not exist", k.Namespace, k.ServiceAccount.Name)
	case string(sa.UID) != k.ServiceAccount.UID:
		return "", refuse("service account %s/%s has UID %s, the token's is %s", k.Namespace, k.ServiceAccount.Name, sa.UID, k.ServiceAccount.UID)
	case sa.DeletionTimestamp != nil && sa.DeletionTimestamp.Time.Before(deletedBefore):
		return "", refuse("service account %s/%s is deleted", k.Namespace, k.ServiceAccount.Name)
	}
	pod, ok := v.Identities.Pod(k.Namespace, k.ServiceAccount.Name, k.Pod.Name)
	switch {
	case !ok:
		return "", refuse("pod %s/%s of the token does not exist", k.Namespace, k.Pod.Name)
	case string(pod.UID) != k.Pod.UID:
		return "", refuse("pod %s/%s has UID %s, the token's is %s", k.Namespace, k.Pod.Name, pod.UID, k.Pod.UID)
	case pod.DeletionTimestamp != nil && pod.DeletionTimestamp.Time.Before(deletedBefore):
		return "", refuse("pod %s/%s is deleted", k.Namespace, k.Pod.Name)
	case pod.Spec.ServiceAccountName != k.ServiceAccount.Name:
		return "", refuse("pod %s/%s runs as %q, not as the token's service account", k.Namespace, k.Pod.Name, pod.Spec.ServiceAccountName)
	case pod.Spec.NodeName != k.Node.Name:
		return "", refuse("pod %s/%s is on node %q, the token names %q", k.Namespace, k.Pod.Name, pod.Spec.NodeName, k.Node.Name)
	}
	return k.Node.Name, nil
}

func (v *LocalTokenVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// jwsHeader reads alg and kid from a compact JWS's protected header, verifying nothing: it only
// sorts tokens before go-jose parses and verifies them.
func jwsHeader(token string) (alg, kid string, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "", errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", "", errors.New("not a JWT: the header is not base64url")
	}
	var header struct {
		Alg *string `json:"alg"`
		Kid string  `json:"kid"`
	}
	if err := json.Unmarshal(raw, &header); err != nil || header.Alg == nil {
		return "", "", errors.New("not a JWT: no JOSE header")
	}
	return *header.Alg, header.Kid, nil
}

// LocalFirstAuthenticator asks Local first and Fallback (TokenReview, usually behind a cache)
// when Local cannot decide. Local's acceptances and refusals are final.
type LocalFirstAuthenticator struct {
	Local    Authenticator
	Fallback Authenticator
	// Metrics counts the decisions by path; nil counts nothing.
	Metrics *Metrics
}

// Authenticate implements Authenticator.
func (a *LocalFirstAuthenticator) Authenticate(ctx context.Context, token string) (string, error) {
	node, err := a.Local.Authenticate(ctx, token)
	if !errors.Is(err, ErrUndecided) {
		a.count("local", err)
		return node, err
	}
	node, err = a.Fallback.Authenticate(ctx, token)
	a.count("tokenreview", err)
	return node, err
}

// Recheck implements Rechecker: the local check reads the pod and service account as they are
// now, so it is itself afresh; what it cannot decide is reviewed by the API server.
func (a *LocalFirstAuthenticator) Recheck(ctx context.Context, token string) (string, error) {
	node, err := a.Local.Authenticate(ctx, token)
	if !errors.Is(err, ErrUndecided) {
		a.count("local", err)
		return node, err
	}
	node, err = reviewAfresh(ctx, a.Fallback, token)
	a.count("tokenreview", err)
	return node, err
}

func (a *LocalFirstAuthenticator) count(path string, err error) {
	if a.Metrics == nil || a.Metrics.TokenDecisions == nil {
		return
	}
	result := "accepted"
	switch {
	case errors.Is(err, ErrUnauthenticated):
		result = "refused"
	case err != nil:
		result = "error"
	}
	a.Metrics.TokenDecisions.WithLabelValues(path, result).Inc()
}
