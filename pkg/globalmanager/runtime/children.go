package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// Children creates and updates the children of one owner object, with events on the owner.
type Children struct {
	Client   kubernetes.Interface
	Recorder record.EventRecorder
	Owner    workers.Owner
	// Object is the owner as events need it (the same object as Owner's).
	Object k8sruntime.Object
	// Description names the owner's kind in messages, e.g. "joint inference service".
	Description string
	// Changes, when set, gathers the creates and updates into one Event per sync (ChildEvents);
	// without it each is an Event of its own.
	Changes *ChildEvents
}

// changed notes that the child was created or updated (reason "Created" or "Updated").
func (c Children) changed(reason, kind, name string) {
	if c.Changes != nil {
		c.Changes.Add(reason, kind+" "+name)
		return
	}
	c.Recorder.Eventf(c.Object, corev1.EventTypeNormal, reason, "%s %s %s", reason, kind, name)
}

// TakenName handles a create that found the name taken. The child caches hold only objects
// carrying the owner's labels (ChildInformers), so the object is read from the API server: if the
// owner controls it the cache only lags (its add event enqueues the owner again) and nil is
// returned; otherwise the name is someone else's (NotControlled).
func (c Children) TakenName(ctx context.Context, kind, name string, get func(ctx context.Context) (metav1.Object, error)) error {
	controlled, err := ControlledLive(ctx, c.Owner, get)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s/%s existed and is gone; will retry", kind, c.Owner.GetNamespace(), name)
	}
	if err != nil {
		return fmt.Errorf("reading %s %s/%s, whose name is taken: %w", kind, c.Owner.GetNamespace(), name, err)
	}
	if controlled {
		return nil
	}
	return c.NotControlled(kind, name)
}

// NotControlled is the error (and ChildConflict event) for a child name taken by an object the
// owner does not control.
func (c Children) NotControlled(kind, name string) error {
	msg := fmt.Sprintf("%s %s/%s exists and is not controlled by %s %s", kind, c.Owner.GetNamespace(), name, c.Description, c.Owner.GetName())
	c.Recorder.Event(c.Object, corev1.EventTypeWarning, "ChildConflict", msg)
	return errors.New(msg)
}

// ConvergeService creates desired, or updates the Service of its name (looked up in lister) when
// its labels or spec hash differ. Only what GM decides is written: the cluster IP and the other
// allocated fields stay.
func (c Children) ConvergeService(ctx context.Context, lister corelisters.ServiceLister, desired *corev1.Service) error {
	namespace := c.Owner.GetNamespace()
	client := c.Client.CoreV1().Services(namespace)
	actual, err := lister.Services(namespace).Get(desired.Name)
	if apierrors.IsNotFound(err) {
		_, err := client.Create(ctx, desired, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return c.TakenName(ctx, "service", desired.Name, func(ctx context.Context) (metav1.Object, error) {
				return client.Get(ctx, desired.Name, metav1.GetOptions{})
			})
		}
		if err != nil {
			c.Recorder.Eventf(c.Object, corev1.EventTypeWarning, "FailedCreate", "Creating service %s: %v", desired.Name, err)
			return fmt.Errorf("creating service %s/%s: %w", namespace, desired.Name, err)
		}
		c.changed("Created", "service", desired.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting service %s/%s: %w", namespace, desired.Name, err)
	}
	if !workers.IsControlledBy(actual, c.Owner) {
		return c.NotControlled("service", desired.Name)
	}
	if workers.ChildUnchanged(actual, desired) {
		return nil
	}
	updated := actual.DeepCopy()
	workers.MarkDesired(updated, desired)
	updated.Spec.Selector = desired.Spec.Selector
	updated.Spec.Ports = desired.Spec.Ports
	if _, err := client.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		c.Recorder.Eventf(c.Object, corev1.EventTypeWarning, "FailedUpdate", "Updating service %s: %v", desired.Name, err)
		return fmt.Errorf("updating service %s/%s: %w", namespace, desired.Name, err)
	}
	c.changed("Updated", "service", desired.Name)
	return nil
}

// Reasons a worker's S3 credentials cannot be used; features report them as their blocked reason.
const (
	ReasonCredentialNotFound = "CredentialNotFound"
	ReasonInvalidCredential  = "InvalidCredential"
)

// Blocker is a problem in what a resource refers to that keeps its workers from being built.
type Blocker struct{ Reason, Message string }

// S3CredentialsFor returns how a worker reaches url: for an s3:// URL with a credential Secret
// secretName in namespace, the Secret's endpoint and keys (by reference); nil for other URLs,
// which need none (an http(s) download or a host path). usedBy names the referrer in messages,
// e.g. `model "m"`. A missing or unusable Secret is a Blocker, not an error.
func S3CredentialsFor(ctx context.Context, client kubernetes.Interface, namespace, url, secretName, usedBy string) (*workers.S3Credentials, *Blocker, error) {
	if secretName == "" || !strings.HasPrefix(strings.ToLower(url), "s3://") {
		return nil, nil, nil
	}
	secret, err := client.CoreV1().Secrets(namespace).Get(ctx, secretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, &Blocker{ReasonCredentialNotFound, fmt.Sprintf("secret %q named by %s not found", secretName, usedBy)}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("getting secret %s/%s named by %s: %w", namespace, secretName, usedBy, err)
	}
	creds, err := workers.S3CredentialsFromSecret(secret)
	if err != nil {
		return nil, &Blocker{ReasonInvalidCredential, fmt.Sprintf("%s: %v", usedBy, err)}, nil
	}
	return creds, nil, nil
}
