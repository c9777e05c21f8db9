package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/sedna-go/sedna/cmd/sedna-gm/app"
	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
	"github.com/sedna-go/sedna/test/integration/framework"
)

// lcIdentity creates what the kubelet would have for an LC on node: the service account, the node
// and the LC pod, and returns a token requested for that pod with the given audience.
func lcToken(t *testing.T, ns, serviceAccount, node, audience string, boundToPod bool) string {
	t.Helper()
	ctx := context.Background()
	kube := controlPlane.Kube
	_, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
	_, err = kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](3600),
	}}
	if boundToPod {
		pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "lc-"},
			Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: serviceAccount,
				Containers: []corev1.Container{{Name: "lc", Image: "sedna-lc"}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		request.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	issued, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, serviceAccount, request, metav1.CreateOptions{})
	require.NoError(t, err)
	return issued.Status.Token
}

func TestTokenReviewBindsTheLCToItsNode(t *testing.T) {
	ns := newNamespace(t)
	auth := &messagelayer.TokenReviewAuthenticator{
		Client:          controlPlane.Kube.AuthenticationV1().TokenReviews(),
		Audiences:       []string{"sedna-gm"},
		ServiceAccounts: []string{ns + "/sedna-lc"},
	}
	ctx := context.Background()

	token := lcToken(t, ns, "sedna-lc", "edge-tr-1", "sedna-gm", true)
	node, err := auth.Authenticate(ctx, token)
	require.NoError(t, err)
	require.Equal(t, "edge-tr-1", node, "the node comes from the token's pod binding")
	require.WithinDuration(t, time.Now().Add(time.Hour), messagelayer.TokenExpiry(token), time.Minute,
		"a connection with this token ends at the token's exp")

	cases := map[string]struct {
		token string
		want  string
	}{
		"wrong audience":        {lcToken(t, ns, "sedna-lc", "edge-tr-1", "kubernetes", true), "unauthenticated"},
		"other service account": {lcToken(t, ns, "workload", "edge-tr-1", "sedna-gm", true), "is not an LC service account"},
		"not bound to a pod":    {lcToken(t, ns, "sedna-lc", "edge-tr-1", "sedna-gm", false), "not bound to a pod on a node"},
		"garbage":               {"not-a-token", "unauthenticated"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := auth.Authenticate(ctx, tc.token)
			require.ErrorContains(t, err, tc.want)
			require.ErrorIs(t, err, messagelayer.ErrUnauthenticated)
		})
	}
}

// gmProcess is a sedna-gm run in this test process against the control plane.
type gmProcess struct {
	cancel      context.CancelFunc
	done        chan error
	stopOnce    sync.Once
	channelPort int
}

func startGM(t *testing.T, dir, identity, tokensFile string, cert framework.ServingCert) *gmProcess {
	t.Helper()
	port, err := framework.FreePort()
	require.NoError(t, err)
	enabled := true
	cfg := &config.Config{
		KubeConfig: controlPlane.KubeconfigPath,
		WebSocket: config.WebSocket{Address: "127.0.0.1", Port: port, TLSCertFile: cert.CertFile, TLSKeyFile: cert.KeyFile,
			StaticTokensFile: tokensFile},
		LeaderElection: config.LeaderElection{Enabled: &enabled, LeaseNamespace: "default", LeaseName: "sedna-gm-it",
			LeaseDuration: config.Duration{Duration: 3 * time.Second}, RenewDeadline: config.Duration{Duration: 2 * time.Second},
			RetryPeriod: config.Duration{Duration: 200 * time.Millisecond}},
		MetricsAddress: "127.0.0.1:0", HealthAddress: "127.0.0.1:0",
	}
	cfg.SetDefaults()
	require.NoError(t, cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	gm := &gmProcess{cancel: cancel, done: make(chan error, 1), channelPort: port}
	go func() { gm.done <- app.Run(ctx, cfg, identity) }()
	t.Cleanup(gm.stop)
	return gm
}

func (gm *gmProcess) stop() {
	gm.stopOnce.Do(gm.stopNow)
}

func (gm *gmProcess) stopNow() {
	gm.cancel()
	select {
	case <-gm.done: //nolint:errcheck // stopped on purpose: Run's error is the cancellation
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		n := goruntime.Stack(buf, true)
		panic("sedna-gm did not stop within 30s:\n" + string(buf[:n]))
	}
}

func leaseHolder(t *testing.T) string {
	lease, err := controlPlane.Kube.CoordinationV1().Leases("default").Get(context.Background(), "sedna-gm-it", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// dialLC connects to a GM's channel as the LC holding token.
func dialLC(t *testing.T, cert framework.ServingCert, port int, token string) (*websocket.Conn, error) {
	dialer := websocket.Dialer{TLSClientConfig: lcTLSConfig(t, cert), HandshakeTimeout: 5 * time.Second}
	ws, _, err := dialer.Dial(fmt.Sprintf("wss://127.0.0.1:%d/", port), http.Header{"Authorization": {"Bearer " + token}})
	return ws, err
}

// lcTLSConfig trusts GM's serving certificate, as an LC does.
func lcTLSConfig(t *testing.T, cert framework.ServingCert) *tls.Config {
	caPEM, err := os.ReadFile(cert.CAFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

func readFrame(t *testing.T, ws *websocket.Conn) *channel.Frame {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, data, err := ws.ReadMessage()
	require.NoError(t, err)
	f, err := channel.Decode(data, 0)
	require.NoError(t, err)
	return f
}

func writeFrame(t *testing.T, ws *websocket.Conn, f channel.Frame) {
	t.Helper()
	data, err := channel.Encode(&f)
	require.NoError(t, err)
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, data))
}

// TestGMFailoverAndDatasetReport runs two GMs: the leader serves LCs; when it stops, the standby
// takes the Lease, serves the LC a complete snapshot, and turns the LC's report into status.
func TestGMFailoverAndDatasetReport(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	cert, err := framework.WriteServingCert(dir, "127.0.0.1")
	require.NoError(t, err)
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("edge-token,edge-gm-1\n"), 0o600))
	ctx := context.Background()
	// The node exists, as every node with an LC does: a GM taking the lead prunes the report
	// marks of nodes that do not.
	_, err = controlPlane.Kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-gm-1"}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}

	ds := &sednav1.Dataset{ObjectMeta: metav1.ObjectMeta{Name: "train", Namespace: ns},
		Spec: sednav1.DatasetSpec{URL: "/data/train.txt", Format: "txt", NodeName: "edge-gm-1"}}
	_, err = controlPlane.Sedna.SednaV1alpha1().Datasets(ns).Create(ctx, ds, metav1.CreateOptions{})
	require.NoError(t, err)

	first := startGM(t, dir, "gm-a", tokens, cert)
	require.Eventually(t, func() bool { return leaseHolder(t) == "gm-a" }, 30*time.Second, 100*time.Millisecond)
	second := startGM(t, dir, "gm-b", tokens, cert)

	// The leader serves the channel; the standby does not listen at all.
	require.Eventually(t, func() bool {
		ws, err := dialLC(t, cert, first.channelPort, "edge-token")
		if err == nil {
			_ = ws.Close()
		}
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	_, err = dialLC(t, cert, second.channelPort, "edge-token")
	require.Error(t, err, "the standby must not serve LCs")

	first.stop()
	require.Eventually(t, func() bool { return leaseHolder(t) == "gm-b" }, 30*time.Second, 100*time.Millisecond)

	var ws *websocket.Conn
	require.Eventually(t, func() bool {
		ws, err = dialLC(t, cert, second.channelPort, "edge-token")
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	defer func() { _ = ws.Close() }()

	// Snapshot: the dataset, then sync.
	var insert *channel.Frame
	for {
		f := readFrame(t, ws)
		writeFrame(t, ws, channel.Frame{Header: channel.Header{Operation: channel.OpAck}, Ack: f.Seq})
		if f.Header.Operation == channel.OpSync {
			break
		}
		if f.Header.ResourceKind == "dataset" && f.Header.ResourceName == "train" {
			insert = f
		}
	}
	require.NotNil(t, insert, "the new leader's snapshot lacks the dataset")
	var sent sednav1.Dataset
	require.NoError(t, json.Unmarshal(insert.Content, &sent))
	require.Equal(t, "edge-gm-1", sent.Spec.NodeName)

	writeFrame(t, ws, channel.Frame{
		Header:  channel.Header{Namespace: ns, ResourceKind: "dataset", ResourceName: "train", Operation: channel.OpStatus},
		Content: []byte(`{"numberOfSamples":42}`), Seq: 1,
	})
	for {
		f := readFrame(t, ws)
		if f.Header.Operation == channel.OpAck {
			require.Equal(t, uint64(1), f.Ack)
			require.Empty(t, f.Error)
			break
		}
	}
	require.Eventually(t, func() bool {
		got, err := controlPlane.Sedna.SednaV1alpha1().Datasets(ns).Get(ctx, "train", metav1.GetOptions{})
		return err == nil && got.Status.NumberOfSamples == 42
	}, 30*time.Second, 100*time.Millisecond, "status.numberOfSamples was not updated from the report")
	require.Equal(t, 1, countEvents(t, ns, "train"), "one Counted event")

	// GM dies before its ack reaches the LC, which replays report 1 to the next GM. The
	// replay carries other content here, so handling it again would show in the status.
	require.NoError(t, ws.Close())
	second.stop()
	third := startGM(t, dir, "gm-c", tokens, cert)
	require.Eventually(t, func() bool { return leaseHolder(t) == "gm-c" }, 30*time.Second, 100*time.Millisecond)
	var ws3 *websocket.Conn
	require.Eventually(t, func() bool {
		ws3, err = dialLC(t, cert, third.channelPort, "edge-token")
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	defer func() { _ = ws3.Close() }()
	report := func(seq uint64, samples int) {
		writeFrame(t, ws3, channel.Frame{
			Header:  channel.Header{Namespace: ns, ResourceKind: "dataset", ResourceName: "train", Operation: channel.OpStatus},
			Content: []byte(fmt.Sprintf(`{"numberOfSamples":%d}`, samples)), Seq: seq,
		})
		for {
			f := readFrame(t, ws3)
			if f.Header.Operation == channel.OpAck {
				require.Equal(t, seq, f.Ack)
				require.Empty(t, f.Error)
				return
			}
			writeFrame(t, ws3, channel.Frame{Header: channel.Header{Operation: channel.OpAck}, Ack: f.Seq})
		}
	}
	samples := func() int {
		got, err := controlPlane.Sedna.SednaV1alpha1().Datasets(ns).Get(ctx, "train", metav1.GetOptions{})
		require.NoError(t, err)
		return got.Status.NumberOfSamples
	}
	report(1, 43) // acknowledged, so the LC forgets it
	require.Never(t, func() bool { return samples() != 42 }, 3*time.Second, 100*time.Millisecond,
		"the next GM handled the replayed report 1 again")
	report(2, 44)
	require.Eventually(t, func() bool { return samples() == 44 }, 30*time.Second, 100*time.Millisecond, "report 2 was not handled")
}

func countEvents(t *testing.T, ns, name string) int {
	var n int
	require.Eventually(t, func() bool {
		events, err := controlPlane.Kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		n = 0
		for _, e := range events.Items {
			if e.InvolvedObject.Name == name && e.Reason == "Counted" {
				n++
			}
		}
		return n > 0
	}, 10*time.Second, 100*time.Millisecond)
	return n
}
