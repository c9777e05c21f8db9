package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
)

type staticIssuer struct {
	keys *jose.JSONWebKeySet
	err  error
}

func (s staticIssuer) Fetch(context.Context) (string, *jose.JSONWebKeySet, error) {
	return "https://kubernetes.default.svc", s.keys, s.err
}

// TestAuthenticatorVerifiesLocallyOrFallsBack wires the authenticator as GM does: with the
// issuer's keys readable, an LC's pod-bound token is accepted without the TokenReview client
// (the fake one authenticates nobody); without them the same token goes to TokenReview, and the
// mode metric says which.
func TestAuthenticatorVerifiesLocallyOrFallsBack(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	require.NoError(t, err)
	now := time.Now()
	token, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:sedna:sedna-lc", "aud": []string{"sedna-gm"},
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"kubernetes.io": map[string]any{"namespace": "sedna", "serviceaccount": map[string]any{"name": "sedna-lc", "uid": "sa-uid"},
			"pod": map[string]any{"name": "lc-1", "uid": "pod-uid"}, "node": map[string]any{"name": "edge-1", "uid": "n"}},
	}).Serialize()
	require.NoError(t, err)
	keys := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}

	for name, tc := range map[string]struct {
		issuer   messagelayer.IssuerKeySource
		wantMode float64
		wantErr  string
	}{
		"keys readable":    {issuer: staticIssuer{keys: keys}, wantMode: 1},
		"keys forbidden":   {issuer: staticIssuer{err: errors.New("forbidden")}, wantMode: 0, wantErr: "reviewing the token"},
		"no issuer at all": {wantMode: 0, wantErr: "reviewing the token"},
	} {
		t.Run(name, func(t *testing.T) {
			kube := fake.NewClientset(
				&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "sedna", Name: "sedna-lc", UID: "sa-uid"}},
				&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "sedna", Name: "lc-1", UID: "pod-uid"},
					Spec: corev1.PodSpec{NodeName: "edge-1", ServiceAccountName: "sedna-lc"}})
			c := clients{kube: kube, reviews: kube.AuthenticationV1().TokenReviews(), issuer: tc.issuer}
			cfg := testConfig(t, 9000)
			metrics := messagelayer.NewMetrics(nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			auth, err := authenticator(ctx, cfg, c, metrics)
			require.NoError(t, err)
			if tc.wantErr != "" {
				// Nothing local to wait for: the token goes to TokenReview (which the fake
				// client cannot answer).
				_, err := auth.Authenticate(ctx, token)
				require.ErrorContains(t, err, tc.wantErr)
				require.Zero(t, testutil.ToFloat64(metrics.LocalTokenVerification))
				reviews := 0
				for _, a := range kube.Actions() {
					if a.GetResource().Resource == "tokenreviews" {
						reviews++
					}
				}
				require.Equal(t, 1, reviews, "the token went to TokenReview")
				return
			}
			require.Eventually(t, func() bool { return testutil.ToFloat64(metrics.LocalTokenVerification) == tc.wantMode },
				10*time.Second, 10*time.Millisecond)
			require.Eventually(t, func() bool {
				node, err := auth.Authenticate(ctx, token)
				return err == nil && node == "edge-1"
			}, 10*time.Second, 10*time.Millisecond, "the token was not accepted locally")
			for _, a := range kube.Actions() {
				require.NotEqual(t, "tokenreviews", a.GetResource().Resource, "a TokenReview was made")
			}
		})
	}
}
