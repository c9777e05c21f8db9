package secret

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

type recordingDownstream struct {
	objects map[channel.Key][]byte
	nodes   map[channel.Key][]string
}

func (r *recordingDownstream) Publish(key channel.Key, _ uint64, object []byte, nodes ...string) {
	r.objects[key], r.nodes[key] = object, nodes
}

func (r *recordingDownstream) Unpublish(key channel.Key) {
	delete(r.objects, key)
	delete(r.nodes, key)
}

func TestSecretsGoOnlyToNodesThatNeedThemWithOnlyS3Annotations(t *testing.T) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: "ns", ResourceVersion: "11", Annotations: map[string]string{
			"s3-endpoint": "minio.local:9000", "s3-usehttps": "0",
			"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"SECRET_ACCESS_KEY":"leak"}}`,
		}},
		Data: map[string][]byte{"ACCESS_KEY_ID": []byte("id"), "SECRET_ACCESS_KEY": []byte("key")},
	}
	kube := kubefake.NewClientset(secret)
	downstream := &recordingDownstream{objects: map[channel.Key][]byte{}, nodes: map[channel.Key][]string{}}
	bindings := runtime.NewBindings()
	ctrl, err := New(runtime.Dependencies{KubeClient: kube, Downstream: downstream, Secrets: bindings})
	require.NoError(t, err)
	c := ctrl.(*Controller)
	key := runtime.Key(runtime.SecretKind, "ns", "s3")

	bindings.Set(runtime.Key("dataset", "ns", "d"), []channel.Key{key}, []string{"edge-1"})
	require.Equal(t, 1, c.queue.Len())
	require.NoError(t, c.sync(context.Background(), "ns/s3"))
	require.Equal(t, []string{"edge-1"}, downstream.nodes[key])
	var content Content
	require.NoError(t, json.Unmarshal(downstream.objects[key], &content))
	require.Equal(t, map[string]string{"s3-endpoint": "minio.local:9000", "s3-usehttps": "0"}, content.Annotations)
	require.Equal(t, []byte("key"), content.Data["SECRET_ACCESS_KEY"])

	// The dataset went away: the secret leaves the node.
	bindings.Set(runtime.Key("dataset", "ns", "d"), nil, nil)
	require.NoError(t, c.sync(context.Background(), "ns/s3"))
	require.NotContains(t, downstream.nodes, key)

	// A referenced secret that does not exist is not published.
	missing := runtime.Key(runtime.SecretKind, "ns", "missing")
	bindings.Set(runtime.Key("dataset", "ns", "e"), []channel.Key{missing}, []string{"edge-1"})
	require.NoError(t, c.sync(context.Background(), "ns/missing"))
	require.NotContains(t, downstream.nodes, missing)
}
