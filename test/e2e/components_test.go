//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/sedna-go/sedna/test/e2e/framework"
	"github.com/sedna-go/sedna/test/localsedna"
)

// The LC process is killed while its dataset grows: the pod's restart policy brings it back, it
// resumes from its store and the count continues.
func TestLCKilledRecoversItsState(t *testing.T) {
	ns := framework.NewNamespace(t)
	const node = "edge-node-2"
	index := datasetIndex(t, node, ns, "train.txt", 7)
	createDataset(t, ns, "train", node, "train.txt")
	waitForSamples(t, ns, "train", 7)

	ctx := context.Background()
	killed, err := framework.Sedna.KillLC(node)
	require.NoError(t, err)
	appendSamples(t, index, 4)
	framework.Eventually(t, time.Minute, "a new LC process on "+node, func() (bool, string) {
		pid, err := framework.Sedna.LCPID(node)
		if err != nil {
			return false, err.Error()
		}
		return pid != killed, fmt.Sprintf("pid %d", pid)
	})
	waitForSamples(t, ns, "train", 11)
	framework.Eventually(t, 30*time.Second, "the LC container's restart in its pod status", func() (bool, string) {
		pod, err := framework.Sedna.LCPod(ctx, node)
		if err != nil {
			return false, err.Error()
		}
		if len(pod.Status.ContainerStatuses) == 0 {
			return false, "no container statuses"
		}
		return pod.Status.ContainerStatuses[0].RestartCount >= 1, fmt.Sprintf("restartCount=%d", pod.Status.ContainerStatuses[0].RestartCount)
	})
	require.NoError(t, framework.Sedna.WaitForLCs(ctx))
}

// GM is killed (SIGKILL) while a dataset grows and started again: it takes its Lease back,
// serves the LCs a complete snapshot and the status continues.
func TestGMKilledAndRestarted(t *testing.T) {
	ns := framework.NewNamespace(t)
	index := datasetIndex(t, "edge-node-1", ns, "train.txt", 3)
	createDataset(t, ns, "train", "edge-node-1", "train.txt")
	waitForSamples(t, ns, "train", 3)

	ctx := context.Background()
	require.NoError(t, framework.Sedna.KillGM())
	appendSamples(t, index, 2)
	// A Dataset created while GM is down reaches its node after the restart.
	datasetIndex(t, "edge-node-2", ns, "late.txt", 4)
	createDataset(t, ns, "late", "edge-node-2", "late.txt")
	require.NoError(t, framework.Sedna.StartGM(ctx))
	require.NoError(t, framework.Sedna.WaitForLCs(ctx))
	waitForSamples(t, ns, "train", 5)
	waitForSamples(t, ns, "late", 4)
}

// A token bound to the LC pod of one node does not let its holder act as another node.
func TestWrongNodeTokenIsRefused(t *testing.T) {
	ctx := context.Background()
	pod, err := framework.Sedna.LCPod(ctx, "edge-node-1")
	require.NoError(t, err)
	tr, err := framework.Sedna.Kube.CoreV1().ServiceAccounts(localsedna.SednaNamespace).CreateToken(ctx, "sedna-lc", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{"sedna-gm"}, ExpirationSeconds: ptr.To[int64](600),
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	ca, err := os.ReadFile(framework.Sedna.GMCAFile())
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(ca))
	dialer := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, HandshakeTimeout: 10 * time.Second}
	dial := func(node string) int {
		header := http.Header{}
		header.Set("Authorization", "Bearer "+tr.Status.Token)
		header.Set("Node-Name", node)
		conn, resp, err := dialer.DialContext(ctx, "wss://"+framework.Sedna.GMAddress()+"/", header)
		if conn != nil {
			_ = conn.Close()
		}
		require.NotNil(t, resp, "dialing GM as %s: %v", node, err)
		return resp.StatusCode
	}
	// GM, with build/gm's configuration and RBAC, verifies the LC tokens itself: the token was
	// decided locally, twice, and no TokenReview decided anything.
	metric := func(sample string) float64 {
		v, err := framework.Sedna.GMMetric(ctx, sample)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, 1.0, metric("sedna_gm_channel_local_token_verification"), "GM does not verify LC tokens itself")
	localBefore := metric(`sedna_gm_channel_token_decisions_total{path="local",result="accepted"}`)
	reviewedBefore := metric(`sedna_gm_channel_token_decisions_total{path="tokenreview",result="accepted"}`)

	require.Equal(t, http.StatusForbidden, dial("edge-node-2"), "GM let a token of edge-node-1 act as edge-node-2")
	require.Equal(t, http.StatusSwitchingProtocols, dial("edge-node-1"), "the same token for its own node must be accepted")

	// At least: the LCs' own periodic rechecks are local acceptances too.
	require.GreaterOrEqual(t, metric(`sedna_gm_channel_token_decisions_total{path="local",result="accepted"}`), localBefore+2)
	require.Equal(t, reviewedBefore, metric(`sedna_gm_channel_token_decisions_total{path="tokenreview",result="accepted"}`))
}
