package runtime

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

// tokenBytes is the size of a worker token before encoding: 32 random bytes, 43 base64url chars.
const tokenBytes = 32

// WorkerTokenSelector selects the worker-token Secrets: the only Secrets GM caches.
var WorkerTokenSelector = labels.SelectorFromSet(labels.Set{workerauth.TokenSecretLabel: "true"})

// NewWorkerTokenInformers returns the informer factory of the worker-token Secrets in namespace
// ("" for all): a Secret informer filtered by WorkerTokenSelector, so GM asks for and caches
// only those. RBAC cannot narrow list/watch by label, so GM's service account may list every
// Secret (build/gm/rbac.yaml); the selector is GM's own restraint, not an enforced bound.
func NewWorkerTokenInformers(client kubernetes.Interface, namespace string) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = WorkerTokenSelector.String() }))
}

// ErrWorkerTokenConflict is returned when a job's worker-token Secret cannot be used: it belongs
// to another object or holds no valid token. GM never overwrites it.
var ErrWorkerTokenConflict = errors.New("worker-token secret unusable")

// WorkerTokens keeps the worker-token Secret of each job (contract C1):
// "<name>-<lowercase kind>-worker-token" (WorkerTokenSecretName),
// data "token" = 32 random bytes in base64url without padding, controlled by the job. It is
// created once and never rotated; a job's workers read it through SEDNA_WORKER_TOKEN and the LC
// of their node gets its SHA-256 with the job.
type WorkerTokens struct {
	client kubernetes.Interface
	lister corelisters.SecretLister
	// random is the token source; a test seam.
	random io.Reader
}

// NewWorkerTokens reads the Secrets through lister (from NewWorkerTokenInformers) and creates
// them with client.
func NewWorkerTokens(client kubernetes.Interface, lister corelisters.SecretLister) *WorkerTokens {
	return &WorkerTokens{client: client, lister: lister, random: rand.Reader}
}

// WorkerTokenSecretName is the name of owner's worker-token Secret,
// "<name>-<lowercase kind>-worker-token": objects of two kinds may share a name in a namespace
// (upstream accepts that), and each has its own token. A name too long for that (a Secret's
// name has at most 253 characters) is cut and followed by 8 hex digits of the SHA-256 of the
// whole name, so that the Secret's name stays deterministic, valid and the owner's own.
func WorkerTokenSecretName(owner workers.Owner) string {
	suffix := "-" + strings.ToLower(owner.Kind) + workerauth.TokenSecretSuffix
	name := owner.GetName()
	if len(name)+len(suffix) <= validation.DNS1123SubdomainMaxLength {
		return name + suffix
	}
	sum := sha256.Sum256([]byte(name))
	digest := hex.EncodeToString(sum[:4])
	cut := strings.TrimRight(name[:validation.DNS1123SubdomainMaxLength-len(suffix)-len(digest)-1], ".-")
	return cut + "-" + digest + suffix
}

// WorkerTokenEnv is the env var every worker container of owner gets: the token by reference.
func WorkerTokenEnv(owner workers.Owner) corev1.EnvVar {
	return corev1.EnvVar{Name: workerauth.TokenEnv, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: WorkerTokenSecretName(owner)}, Key: workerauth.TokenKey,
	}}}
}

// Ensure returns owner's token, creating its Secret when the cache has none. An existing Secret
// is kept as it is; one that owner does not control, or whose token is not valid, is an error
// wrapping ErrWorkerTokenConflict.
func (t *WorkerTokens) Ensure(ctx context.Context, owner workers.Owner) (string, error) {
	name := WorkerTokenSecretName(owner)
	secret, err := t.lister.Secrets(owner.GetNamespace()).Get(name)
	if apierrors.IsNotFound(err) {
		secret, err = t.create(ctx, owner, name)
	}
	if err != nil {
		return "", err
	}
	return tokenOf(secret, owner)
}

func (t *WorkerTokens) create(ctx context.Context, owner workers.Owner, name string) (*corev1.Secret, error) {
	raw := make([]byte, tokenBytes)
	if _, err := io.ReadFull(t.random, raw); err != nil {
		return nil, fmt.Errorf("generating the worker token of %s %s/%s: %w", owner.Kind, owner.GetNamespace(), owner.GetName(), err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: owner.GetNamespace(),
			Labels:          map[string]string{workerauth.TokenSecretLabel: "true"},
			OwnerReferences: workers.OwnerReferences(owner),
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{workerauth.TokenKey: []byte(base64.RawURLEncoding.EncodeToString(raw))},
	}
	created, err := t.client.CoreV1().Secrets(owner.GetNamespace()).Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// The cache lags behind an earlier sync's create: read what is there, never replace it.
		created, err = t.client.CoreV1().Secrets(owner.GetNamespace()).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("creating worker-token secret %s/%s: %w", owner.GetNamespace(), name, err)
	}
	return created, nil
}

// CachedWorkerToken returns owner's token from the cache only ("" when there is none yet or it
// is unusable): for publishing outside a sync, which must not write.
func (t *WorkerTokens) CachedWorkerToken(owner workers.Owner) string {
	secret, err := t.lister.Secrets(owner.GetNamespace()).Get(WorkerTokenSecretName(owner))
	if err != nil {
		return ""
	}
	token, err := tokenOf(secret, owner)
	if err != nil {
		return ""
	}
	return token
}

func tokenOf(secret *corev1.Secret, owner workers.Owner) (string, error) {
	if !workers.IsControlledBy(secret, owner) {
		return "", fmt.Errorf("%w: secret %s/%s exists and is not controlled by %s %s", ErrWorkerTokenConflict,
			secret.Namespace, secret.Name, owner.Kind, owner.GetName())
	}
	token := string(secret.Data[workerauth.TokenKey])
	decoded, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(decoded) != tokenBytes {
		return "", fmt.Errorf("%w: secret %s/%s: data %q is not %d random bytes in base64url without padding", ErrWorkerTokenConflict,
			secret.Namespace, secret.Name, workerauth.TokenKey, tokenBytes)
	}
	return token, nil
}

// workerNameEnv is the env var whose value names a worker in its reports.
const workerNameEnv = "WORKER_NAME"

// NodeWorkers returns the workers among pods that run on node, for workerauth.WorkersAnnotation:
// each pod's name, its WORKER_NAME (a literal value, or its own name when taken from
// metadata.name), its IP and its worker type (label workerTypeLabel). Pods that ended or are
// being deleted, and pods without a WORKER_NAME, are left out. version is the highest
// resourceVersion among all of pods on node, left out or not: the published copy changes when
// one of them does, and the LC applies only newer versions.
func NodeWorkers(pods []*corev1.Pod, node, workerTypeLabel string) (list []workerauth.Worker, version uint64) {
	for _, pod := range pods {
		if pod.Spec.NodeName != node || node == "" {
			continue
		}
		if v, err := Version(pod.ResourceVersion); err == nil && v > version {
			version = v
		}
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		name := workerNameOf(pod)
		if name == "" {
			continue
		}
		list = append(list, workerauth.Worker{Pod: pod.Name, Worker: name, IP: pod.Status.PodIP, Kind: pod.Labels[workerTypeLabel]})
	}
	slices.SortFunc(list, func(a, b workerauth.Worker) int { return strings.Compare(a.Pod, b.Pod) })
	return list, version
}

func workerNameOf(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		for _, e := range c.Env {
			if e.Name != workerNameEnv {
				continue
			}
			if e.ValueFrom == nil {
				return e.Value
			}
			if f := e.ValueFrom.FieldRef; f != nil && f.FieldPath == "metadata.name" {
				return pod.Name
			}
		}
	}
	return ""
}

// WorkerAuth is what the copy of a job published to one node says about the job's workers.
type WorkerAuth struct {
	// Token is the job's worker token ("" when GM has none yet: no hash is published).
	Token   string
	Workers []workerauth.Worker
}

// Annotate sets workerauth.TokenHashAnnotation and workerauth.WorkersAnnotation on annotations
// (the published copy's, never the API object's) and returns them.
func (a WorkerAuth) Annotate(annotations map[string]string) (map[string]string, error) {
	encoded, err := workerauth.EncodeWorkers(a.Workers)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(annotations)+2)
	for k, v := range annotations {
		out[k] = v
	}
	delete(out, workerauth.TokenHashAnnotation)
	if a.Token != "" {
		out[workerauth.TokenHashAnnotation] = workerauth.HashToken(a.Token)
	}
	out[workerauth.WorkersAnnotation] = encoded
	return out, nil
}
