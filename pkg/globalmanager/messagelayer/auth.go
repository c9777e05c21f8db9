package messagelayer

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// NodeNameExtra is the TokenReview extra that carries the node of the pod a service-account token
// is bound to.
const NodeNameExtra = "authentication.kubernetes.io/node-name"

// ErrUnauthenticated is wrapped by every authentication failure.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator turns a bearer token into the node the LC runs on. An error wrapping
// ErrUnauthenticated refuses the token; any other error is a failure to decide. A connection
// opened with a token that carries an expiry (a JWT's exp) is closed when it expires.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (node string, err error)
}

// TokenReviewAuthenticator validates projected service-account tokens with the TokenReview API.
// The token must be issued for one of Audiences, belong to one of ServiceAccounts
// ("namespace/name"; empty = any), and be bound to a pod on a node: the node is taken from the
// token, never from what the client claims.
type TokenReviewAuthenticator struct {
	Client          authenticationv1client.TokenReviewInterface
	Audiences       []string
	ServiceAccounts []string
}

// Authenticate implements Authenticator. The API server checks, on every review, that the pod
// the token is bound to still exists, so reviewing the token again tells whether the LC's pod is
// gone.
func (a *TokenReviewAuthenticator) Authenticate(ctx context.Context, token string) (string, error) {
	review, err := a.Client.Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: a.Audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("reviewing the token: %w", err)
	}
	status := review.Status
	if !status.Authenticated {
		msg := status.Error
		if msg == "" {
			msg = "token not authenticated"
		}
		return "", fmt.Errorf("%w: %s", ErrUnauthenticated, msg)
	}
	if len(a.Audiences) > 0 && !slices.ContainsFunc(status.Audiences, func(aud string) bool { return slices.Contains(a.Audiences, aud) }) {
		return "", fmt.Errorf("%w: token audiences %v do not include %v", ErrUnauthenticated, status.Audiences, a.Audiences)
	}
	if len(a.ServiceAccounts) > 0 && !slices.ContainsFunc(a.ServiceAccounts, func(sa string) bool {
		return status.User.Username == "system:serviceaccount:"+replaceSlash(sa)
	}) {
		return "", fmt.Errorf("%w: %s is not an LC service account (%v)", ErrUnauthenticated, status.User.Username, a.ServiceAccounts)
	}
	nodes := status.User.Extra[NodeNameExtra]
	if len(nodes) != 1 || nodes[0] == "" {
		return "", fmt.Errorf("%w: token of %s is not bound to a pod on a node", ErrUnauthenticated, status.User.Username)
	}
	return nodes[0], nil
}

// TokenExpiry reads the exp claim of a JWT without verifying anything: use it only on a token
// an Authenticator has accepted (a TokenReview verified its signature, so the claim is the API
// server's own). Zero when the token is not a JWT or has no exp: such a token is bounded by the
// periodic review instead.
func TokenExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == nil {
		return time.Time{}
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(exp), 0)
}

func replaceSlash(namespacedName string) string {
	for i := range namespacedName {
		if namespacedName[i] == '/' {
			return namespacedName[:i] + ":" + namespacedName[i+1:]
		}
	}
	return namespacedName
}

// StaticTokenAuthenticator maps fixed tokens to nodes. For development clusters only: the tokens
// never expire and are not bound to anything.
type StaticTokenAuthenticator struct {
	Tokens map[string]string // token → node
}

// Authenticate implements Authenticator in time independent of the token's content.
func (a *StaticTokenAuthenticator) Authenticate(_ context.Context, token string) (string, error) {
	node := ""
	for candidate, n := range a.Tokens {
		if subtle.ConstantTimeCompare([]byte(candidate), []byte(token)) == 1 {
			node = n
		}
	}
	if node == "" {
		return "", fmt.Errorf("%w: unknown static token", ErrUnauthenticated)
	}
	return node, nil
}
