package runtime

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
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

	stored, err := kube.CoreV1().Secrets("ns").Get(ctx, "helmet-jointinferenceservice-worker-token", metav1.GetOptions{})
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

// TestTwoKindsOfOneNameHaveTheirOwnTokens: upstream accepts a ReidJob and a VideoAnalyticsJob
// both named x in one namespace; each gets its own Secret, neither is a conflict.
func TestTwoKindsOfOneNameHaveTheirOwnTokens(t *testing.T) {
	ctx := context.Background()
	kube := kubefake.NewClientset()
	factory := NewWorkerTokenInformers(kube, "")
	indexer := factory.Core().V1().Secrets().Informer().GetIndexer()
	tokens := NewWorkerTokens(kube, factory.Core().V1().Secrets().Lister())
	reid := workers.Owner{Kind: "ReidJob", Object: &sednav1.ReidJob{
		ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "uid-reid"}}}
	va := workers.Owner{Kind: "VideoAnalyticsJob", Object: &sednav1.VideoAnalyticsJob{
		ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "uid-va"}}}
	require.Equal(t, "x-reidjob-worker-token", WorkerTokenSecretName(reid))
	require.Equal(t, "x-videoanalyticsjob-worker-token", WorkerTokenSecretName(va))

	reidToken, err := tokens.Ensure(ctx, reid)
	require.NoError(t, err)
	secrets, err := kube.CoreV1().Secrets("ns").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for i := range secrets.Items {
		require.NoError(t, indexer.Add(&secrets.Items[i]))
	}
	vaToken, err := tokens.Ensure(ctx, va)
	require.NoError(t, err, "the other kind's Secret is no conflict")
	require.NotEqual(t, reidToken, vaToken)
	require.Equal(t, "x-videoanalyticsjob-worker-token", WorkerTokenEnv(va).ValueFrom.SecretKeyRef.Name)
}

// TestEnsureGivesALongOwnerNameAShortenedSecretName: a name too long for
// "<name>-<kind>-worker-token" gets a cut name with a digest of the whole, which the API server
// takes and which differs between two names with the same beginning.
func TestEnsureGivesALongOwnerNameAShortenedSecretName(t *testing.T) {
	ctx := context.Background()
	kube := kubefake.NewClientset()
	factory := NewWorkerTokenInformers(kube, "")
	tokens := NewWorkerTokens(kube, factory.Core().V1().Secrets().Lister())
	owner := func(name string) workers.Owner {
		return workers.Owner{Kind: "JointInferenceService", Object: &sednav1.JointInferenceService{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "uid-1"}}}
	}

	fits := strings.Repeat("a", 218)
	require.Equal(t, fits+"-jointinferenceservice-worker-token", WorkerTokenSecretName(owner(fits)), "the longest name that fits is kept whole")
	long1, long2 := strings.Repeat("a", 252)+"1", strings.Repeat("a", 252)+"2"
	name1, name2 := WorkerTokenSecretName(owner(long1)), WorkerTokenSecretName(owner(long2))
	require.Len(t, name1, 253)
	require.NotEqual(t, name1, name2)
	require.Empty(t, validation.IsDNS1123Subdomain(name1))
	require.Equal(t, name1, WorkerTokenSecretName(owner(long1)), "deterministic")
	require.True(t, strings.HasSuffix(name1, "-jointinferenceservice-worker-token"))
	_, err := tokens.Ensure(ctx, owner(long1))
	require.NoError(t, err)
	_, err = kube.CoreV1().Secrets("ns").Get(ctx, name1, metav1.GetOptions{})
	require.NoError(t, err)
}
