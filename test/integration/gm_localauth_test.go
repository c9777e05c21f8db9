package integration

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/sedna-go/sedna/cmd/sedna-gm/app"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/test/integration/framework"
)

// Samples of GM's channel metrics this file reads.
const (
	localMode        = "sedna_gm_channel_local_token_verification"
	localAccepted    = `sedna_gm_channel_token_decisions_total{path="local",result="accepted"}`
	localRefused     = `sedna_gm_channel_token_decisions_total{path="local",result="refused"}`
	reviewedAccepted = `sedna_gm_channel_token_decisions_total{path="tokenreview",result="accepted"}`
	reviewedRefused  = `sedna_gm_channel_token_decisions_total{path="tokenreview",result="refused"}`
	reviewedError    = `sedna_gm_channel_token_decisions_total{path="tokenreview",result="error"}`
)

// startLocalAuthGM runs a sedna-gm with kubeconfig (no leader election), LC tokens of ns/sedna-lc,
// and a recheck every second; it returns its channel port and metrics URL.
func startLocalAuthGM(t *testing.T, kubeconfig, ns string, cert framework.ServingCert) (int, string) {
	t.Helper()
	gmPort, err := framework.FreePort()
	require.NoError(t, err)
	metricsPort, err := framework.FreePort()
	require.NoError(t, err)
	disabled := false
	cfg := &config.Config{
		KubeConfig: kubeconfig,
		WebSocket: config.WebSocket{Address: "127.0.0.1", Port: gmPort, TLSCertFile: cert.CertFile, TLSKeyFile: cert.KeyFile,
			LCServiceAccounts: []string{ns + "/sedna-lc"},
			TokenReview:       config.TokenReview{RecheckPeriod: config.Duration{Duration: time.Second}}},
		LeaderElection: config.LeaderElection{Enabled: &disabled},
		MetricsAddress: fmt.Sprintf("127.0.0.1:%d", metricsPort), HealthAddress: "127.0.0.1:0",
	}
	cfg.SetDefaults()
	require.NoError(t, cfg.Validate())
	require.True(t, cfg.WebSocket.TokenReview.LocalVerificationEnabled(), "local verification is the default")
	runInBackground(t, "sedna-gm", func(ctx context.Context) error { return app.Run(ctx, cfg, "gm") })
	return gmPort, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
}

// dialUntilServed dials GM as the LC holding token until GM serves it (its channel listens once
// it leads), and returns the connection after the snapshot's sync frame.
func dialUntilServed(t *testing.T, cert framework.ServingCert, port int, token string) *websocket.Conn {
	t.Helper()
	var ws *websocket.Conn
	require.Eventually(t, func() bool {
		var err error
		ws, err = dialLC(t, cert, port, token)
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "GM did not accept the LC's token")
	t.Cleanup(func() { _ = ws.Close() })
	for {
		if f := readFrame(t, ws); f.Header.Operation == channel.OpSync {
			return ws
		}
	}
}

// TestGMVerifiesLCTokensWithoutTokenReview runs sedna-gm with exactly build/gm/rbac.yaml's
// permissions against the real kube-apiserver: a token from the TokenRequest API bound to a real
// LC pod is accepted with no TokenReview at all, the periodic recheck closes the connection once
// the pod is deleted (again without a TokenReview), and the token is refused afterwards.
func TestGMVerifiesLCTokensWithoutTokenReview(t *testing.T) {
	ns := newNamespace(t)
	cert, err := framework.WriteServingCert(t.TempDir(), "127.0.0.1")
	require.NoError(t, err)
	port, metricsURL := startLocalAuthGM(t, gmServiceAccount(t), ns, cert)
	pod, token := lcPodToken(t, ns, "edge-local-1")
	require.Eventually(t, func() bool { return scrape(t, metricsURL, localMode) == 1 }, 60*time.Second, 100*time.Millisecond,
		"GM did not read the service-account issuer's keys with build/gm/rbac.yaml's permissions")

	ws := dialUntilServed(t, cert, port, token)
	require.GreaterOrEqual(t, scrape(t, metricsURL, localAccepted), 1.0)
	// A connect may be refused while GM's informer has not yet seen the pod just created; every
	// other decision, the refusals included, was local.
	accepted := scrape(t, metricsURL, localAccepted)
	require.Eventually(t, func() bool { return scrape(t, metricsURL, localAccepted) >= accepted+2 }, 30*time.Second, 100*time.Millisecond,
		"the rechecks of the live connection (every second) are not local")
	for _, sample := range []string{reviewedAccepted, reviewedRefused, reviewedError} {
		require.Zero(t, scrape(t, metricsURL, sample), "%s: a pod-bound token of this cluster needs no TokenReview", sample)
	}

	require.NoError(t, controlPlane.Kube.CoreV1().Pods(ns).Delete(context.Background(), pod.Name,
		metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(30*time.Second)))
	for {
		if _, _, err = ws.ReadMessage(); err != nil {
			break
		}
	}
	var closeErr *websocket.CloseError
	require.ErrorAs(t, err, &closeErr, "GM did not close the connection of the deleted pod's token")
	require.Contains(t, closeErr.Text, "credential token refused")

	_, resp, err := (&websocket.Dialer{TLSClientConfig: lcTLSConfig(t, cert), HandshakeTimeout: 5 * time.Second}).Dial(
		fmt.Sprintf("wss://127.0.0.1:%d/", port), http.Header{"Authorization": {"Bearer " + token}})
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.GreaterOrEqual(t, scrape(t, metricsURL, localRefused), 2.0, "the recheck and the new connect were refused locally")
	for _, sample := range []string{reviewedAccepted, reviewedRefused, reviewedError} {
		require.Zero(t, scrape(t, metricsURL, sample), "%s: the deleted pod's token was refused without a TokenReview", sample)
	}
}

// TestGMWithoutIssuerDiscoveryFallsBackToTokenReview runs sedna-gm as an identity that may do
// everything with resources but read no non-resource URL, so not the service-account issuer's
// discovery documents (every service account may read them through the built-in
// system:service-account-issuer-discovery binding, so GM runs as an impersonated user here): GM
// still admits the LC, through TokenReview, and says so in its metrics.
func TestGMWithoutIssuerDiscoveryFallsBackToTokenReview(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	user := "it-gm-without-discovery-" + ns
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}}
	_, err := controlPlane.Kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
	require.NoError(t, err)
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}}
	_, err = controlPlane.Kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = controlPlane.Kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), user, metav1.DeleteOptions{}) // best effort
		_ = controlPlane.Kube.RbacV1().ClusterRoles().Delete(context.Background(), user, metav1.DeleteOptions{})        // best effort
	})
	kubeconfig, err := clientcmd.LoadFromFile(controlPlane.KubeconfigPath)
	require.NoError(t, err)
	for _, auth := range kubeconfig.AuthInfos {
		auth.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kubeconfig, path))

	cert, err := framework.WriteServingCert(t.TempDir(), "127.0.0.1")
	require.NoError(t, err)
	port, metricsURL := startLocalAuthGM(t, path, ns, cert)
	_, token := lcPodToken(t, ns, "edge-local-2")
	dialUntilServed(t, cert, port, token)

	require.Zero(t, scrape(t, metricsURL, localMode), "GM cannot read the issuer's keys, so it must not claim local verification")
	require.Zero(t, scrape(t, metricsURL, localAccepted))
	require.Zero(t, scrape(t, metricsURL, localRefused))
	require.GreaterOrEqual(t, scrape(t, metricsURL, reviewedAccepted), 1.0, "the LC was admitted by TokenReview")
}
