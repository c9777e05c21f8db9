package runtime

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

func testOwner() workers.Owner {
	return workers.Owner{Kind: "JointInferenceService", Object: &sednav1.JointInferenceService{
		ObjectMeta: metav1.ObjectMeta{Name: "helmet", Namespace: "ns", UID: "uid-1"}}}
}

func TestEnsureCreatesTheTokenOnceAndKeepsWhatExists(t *testing.T) {
	ctx := context.Background()
	kube := kubefake.NewClientset()
	factory := NewWorkerTokenInformers(kube, "")
	indexer := factory.Core().V1().Secrets().Informer().GetIndexer()
	tokens := NewWorkerTokens(kube, factory.Core().V1().Secrets().Lister())
	tokens.random = bytes.NewReader(bytes.Repeat([]byte{0xfb}, 64))

	token, err := tokens.Ensure(ctx, testOwner())
	require.NoError(t, err)
	require.Equal(t, "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s", token, "32 bytes, base64url, no padding")
	require.Empty(t, tokens.CachedWorkerToken(testOwner()), "not in the cache yet")

	// The cache has not seen the Secret: the create meets AlreadyExists and the existing token wins.
	tokens.random = bytes.NewReader(bytes.Repeat([]byte{0x01}, 64))
	again, err := tokens.Ensure(ctx, testOwner())
	require.NoError(t, err)
	require.Equal(t, token, again)

	stored, err := kube.CoreV1().Secrets("ns").Get(ctx, "helmet-worker-token", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, indexer.Add(stored))
	require.Equal(t, token, tokens.CachedWorkerToken(testOwner()))

	// A token that is not 32 bytes in base64url is refused, never replaced.
	broken := stored.DeepCopy()
	broken.Data[workerauth.TokenKey] = []byte("short")
	require.NoError(t, indexer.Update(broken))
	_, err = tokens.Ensure(ctx, testOwner())
	require.ErrorIs(t, err, ErrWorkerTokenConflict)
	require.ErrorContains(t, err, `data "token" is not 32 random bytes in base64url without padding`)
	require.Empty(t, tokens.CachedWorkerToken(testOwner()))
}

func TestNodeWorkersListsOnlyTheNodesLiveWorkers(t *testing.T) {
	pod := func(name, node, rv string, phase corev1.PodPhase, env corev1.EnvVar) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv, Labels: map[string]string{"x.sedna.io/worker-type": "edge"}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{env}}}},
			Status:     corev1.PodStatus{Phase: phase, PodIP: "10.0.0.1"},
		}
	}
	fromName := corev1.EnvVar{Name: "WORKER_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}
	literal := corev1.EnvVar{Name: "WORKER_NAME", Value: "edgeworker-abcde"}
	list, version := NodeWorkers([]*corev1.Pod{
		pod("b", "edge-1", "12", corev1.PodRunning, literal),
		pod("a", "edge-1", "11", corev1.PodPending, fromName),
		pod("other-node", "edge-2", "99", corev1.PodRunning, fromName),
		pod("done", "edge-1", "15", corev1.PodSucceeded, fromName),
		pod("nameless", "edge-1", "13", corev1.PodRunning, corev1.EnvVar{Name: "X", Value: "y"}),
	}, "edge-1", "x.sedna.io/worker-type")
	require.Equal(t, []workerauth.Worker{
		{Pod: "a", Worker: "a", IP: "10.0.0.1", Kind: "edge"},
		{Pod: "b", Worker: "edgeworker-abcde", IP: "10.0.0.1", Kind: "edge"},
	}, list)
	require.Equal(t, uint64(15), version, "an ended pod on the node still moves the version; another node's does not")
}

// TestEnsureRefusesAnOwnerNameTooLongForTheSecret: "<name>-worker-token" past 253 characters is
// a conflict (the caller's blocked condition), not an error retried at every sync.
func TestEnsureRefusesAnOwnerNameTooLongForTheSecret(t *testing.T) {
	ctx := context.Background()
	kube := kubefake.NewClientset()
	factory := NewWorkerTokenInformers(kube, "")
	tokens := NewWorkerTokens(kube, factory.Core().V1().Secrets().Lister())
	owner := func(name string) workers.Owner {
		return workers.Owner{Kind: "JointInferenceService", Object: &sednav1.JointInferenceService{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "uid-1"}}}
	}

	_, err := tokens.Ensure(ctx, owner(strings.Repeat("a", 241)))
	require.ErrorIs(t, err, ErrWorkerTokenConflict)
	require.ErrorContains(t, err, "may be at most 240 characters")
	secrets, err := kube.CoreV1().Secrets("ns").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, secrets.Items, "a Secret the API server would refuse was created")

	_, err = tokens.Ensure(ctx, owner(strings.Repeat("a", 240)))
	require.NoError(t, err, "the longest name that fits")
}
