package messagelayer

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// NodeNameExtra is the TokenReview extra that carries the node of the pod a service-account token
// is bound to.
const NodeNameExtra = "authentication.kubernetes.io/node-name"

// ErrUnauthenticated is wrapped by every authentication failure.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator turns a bearer token into the node the LC runs on.
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

// Authenticate implements Authenticator.
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
