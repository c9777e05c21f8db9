package integration

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
)

// lcPodToken creates an LC pod on node and returns it with a token bound to it.
func lcPodToken(t *testing.T, ns, node string) (*corev1.Pod, string) {
	t.Helper()
	ctx := context.Background()
	kube := controlPlane.Kube
	_, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "sedna-lc"}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
	_, err = kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
	pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "lc-"},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: "sedna-lc",
			Containers: []corev1.Container{{Name: "lc", Image: "sedna-lc"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	issued, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "sedna-lc", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{"sedna-gm"}, ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return pod, issued.Status.Token
}

// TestAChannelConnectionEndsWhenTheLCPodIsDeleted: the API server stops accepting a token
// whose pod is gone, and GM's periodic review closes the connection that token opened.
func TestAChannelConnectionEndsWhenTheLCPodIsDeleted(t *testing.T) {
	ns := newNamespace(t)
	pod, token := lcPodToken(t, ns, "edge-ch-1")
	auth := &messagelayer.CachingAuthenticator{
		Next: &messagelayer.TokenReviewAuthenticator{
			Client: controlPlane.Kube.AuthenticationV1().TokenReviews(), Audiences: []string{"sedna-gm"},
			ServiceAccounts: []string{ns + "/sedna-lc"},
		},
		TTL: 100 * time.Millisecond, MaxEntries: 10,
	}
	metrics := messagelayer.NewMetrics(nil)
	hub := messagelayer.NewHub(messagelayer.Options{CredentialRecheck: 300 * time.Millisecond}, metrics)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewTLSServer(messagelayer.NewServer(ctx, hub, auth))
	defer srv.Close()

	dialer := websocket.Dialer{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()}
	dialer.TLSClientConfig.MinVersion = tls.VersionTLS12
	ws, _, err := dialer.Dial("wss"+strings.TrimPrefix(srv.URL, "https")+"/", http.Header{"Authorization": {"Bearer " + token}})
	require.NoError(t, err)
	defer func() { _ = ws.Close() }()
	sync := readFrame(t, ws)
	require.Equal(t, channel.OpSync, sync.Header.Operation)
	require.Equal(t, []string{"edge-ch-1"}, hub.ConnectedNodes())

	// Reviews go on while the pod lives: the connection stays.
	time.Sleep(time.Second)
	require.Equal(t, []string{"edge-ch-1"}, hub.ConnectedNodes())

	require.NoError(t, controlPlane.Kube.CoreV1().Pods(ns).Delete(context.Background(), pod.Name,
		metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(20*time.Second)))
	for {
		_, _, err = ws.ReadMessage()
		if err != nil {
			break
		}
	}
	var closeErr *websocket.CloseError
	require.ErrorAs(t, err, &closeErr, "GM did not close the connection of the deleted pod's token")
	require.Contains(t, closeErr.Text, "credential token refused")

	// The token cannot open a new connection either.
	_, resp, err := dialer.Dial("wss"+strings.TrimPrefix(srv.URL, "https")+"/", http.Header{"Authorization": {"Bearer " + token}})
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// TestReportMarksInAConfigMap: the marks survive in the API server as GM writes them: created
// on the first write, merged by node afterwards.
func TestReportMarksInAConfigMap(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	store := &messagelayer.ConfigMapMarks{Client: controlPlane.Kube.CoreV1().ConfigMaps(ns), Name: "sedna-gm-report-marks"}
	marks, err := store.Load(ctx)
	require.NoError(t, err)
	require.Empty(t, marks)
	require.NoError(t, store.Save(ctx, map[string]messagelayer.Mark{"edge-1": {Store: "a", Seq: 3}, "edge-2": {Store: "b", Seq: 9}}))
	require.NoError(t, store.Save(ctx, map[string]messagelayer.Mark{"edge-1": {Store: "a", Seq: 5}}))
	marks, err = store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]messagelayer.Mark{"edge-1": {Store: "a", Seq: 5}, "edge-2": {Store: "b", Seq: 9}}, marks)

	// A ConfigMap past its size limit is refused as Invalid: GM then writes the marks one by one
	// so the nodes already in it go on.
	err = store.Save(ctx, map[string]messagelayer.Mark{"edge-3": {Store: strings.Repeat("x", 1<<20), Seq: 1}})
	require.Error(t, err)
	require.True(t, apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err), "refused as %v", err)

	// Load prunes the marks of deleted nodes from the ConfigMap once it returned, listing the
	// nodes with GM's own permissions.
	gm, err := clientcmd.BuildConfigFromFlags("", gmServiceAccount(t))
	require.NoError(t, err)
	gmKube, err := kubernetes.NewForConfig(gm)
	require.NoError(t, err)
	live := ns + "-edge-1"
	_, err = controlPlane.Kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: live}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = controlPlane.Kube.CoreV1().Nodes().Delete(context.Background(), live, metav1.DeleteOptions{})
	})
	require.NoError(t, store.Save(ctx, map[string]messagelayer.Mark{live: {Store: "c", Seq: 1}}))
	store.Nodes = gmKube.CoreV1().Nodes()
	marks, err = store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, messagelayer.Mark{Store: "c", Seq: 1}, marks[live])
	store.WaitPruned()
	store.Nodes = nil
	marks, err = store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]messagelayer.Mark{live: {Store: "c", Seq: 1}}, marks, "the pruned marks stay in the ConfigMap")

	// GM's service account has no use for deleting Secrets and may not.
	err = gmKube.CoreV1().Secrets(ns).Delete(ctx, "any", metav1.DeleteOptions{})
	require.True(t, apierrors.IsForbidden(err), "deleting a Secret as GM: %v", err)
}
