package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"
)

// RoleLabel is the label GM keeps on its own pod: RoleStandby from start-up, RoleLeader once it
// leads and serves LCs. The channel Service (build/gm's gm) selects RoleLeader, so LCs reach the
// leader only, while every replica that runs is Ready — which a Deployment needs to roll out, as
// a readiness that only the leader passed would hold every rollout (and install.sh's wait) at
// "1 of 2 updated replicas are available" forever.
const (
	RoleLabel   = "sedna.io/gm-role"
	RoleLeader  = "leader"
	RoleStandby = "standby"
)

// ErrRoleNotLabelled is returned when GM could not write RoleLabel on its own pod in time: a
// leader whose pod is not labelled is reached by no LC, and a standby whose pod still says
// leader (a restarted leader) would be.
var ErrRoleNotLabelled = errors.New("could not label GM's own pod with its role")

// Retry delays of setWithin: doubled after each failure up to maxRoleRetry.
const (
	initialRoleRetry = 200 * time.Millisecond
	maxRoleRetry     = 5 * time.Second
)

// podRole writes RoleLabel on GM's own pod.
type podRole struct {
	pods typedcorev1.PodInterface
	name string
	// retry is the first delay of setWithin; initialRoleRetry when zero (a test seam).
	retry time.Duration
}

// podRoleFromEnv is the pod named by POD_NAME in POD_NAMESPACE (the Deployment sets both from
// the downward API), or nil when GM does not run in a pod (local Sedna, a test): nothing to label.
// In a cluster (KUBERNETES_SERVICE_HOST set) without them it returns nil and an error to log: the
// gm Service selects the leader label, so no LC would reach this GM through it.
func podRoleFromEnv(kube kubernetes.Interface) (*podRole, error) {
	name, ns := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if name == "" || ns == "" {
		if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
			return nil, fmt.Errorf("running in a pod but POD_NAME (%q) or POD_NAMESPACE (%q) is unset: GM cannot label its pod "+
				"%s=%s, and the gm Service selects that label, so no LC reaches this GM through it; set both from the downward API "+
				"(metadata.name, metadata.namespace) as build/gm/deployment.yaml does", name, ns, RoleLabel, RoleLeader)
		}
		return nil, nil
	}
	return &podRole{pods: kube.CoreV1().Pods(ns), name: name}, nil
}

// set writes role on the pod, if it is not there already, with a merge patch of that one label
// (an Update would send the whole pod, and drop the fields a GM older than the API server does
// not know).
func (r *podRole) set(ctx context.Context, role string) error {
	if r == nil {
		return nil
	}
	pod, err := r.pods.Get(ctx, r.name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading pod %s: %w", r.name, err)
	}
	if pod.Labels[RoleLabel] == role {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{RoleLabel: role}}})
	if err != nil {
		return fmt.Errorf("encoding the role patch: %w", err)
	}
	if _, err := r.pods.Patch(ctx, r.name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("labelling pod %s %s=%s: %w", r.name, RoleLabel, role, err)
	}
	klog.FromContext(ctx).Info("Labelled own pod", "pod", r.name, "label", RoleLabel, "role", role)
	return nil
}

// setWithin writes role, retrying any error with a growing delay, for at most limit (the lease
// duration: what a failover may take anyway). It returns an error wrapping ErrRoleNotLabelled
// when limit passed, or ctx's error when ctx ended first.
func (r *podRole) setWithin(ctx context.Context, role string, limit time.Duration) error {
	if r == nil {
		return nil
	}
	logger := klog.FromContext(ctx)
	bounded, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	delay := r.retry
	if delay <= 0 {
		delay = initialRoleRetry
	}
	for {
		err := r.set(bounded, role)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if bounded.Err() != nil {
			return fmt.Errorf("%w: %s=%s on pod %s not written within %s: %w", ErrRoleNotLabelled, RoleLabel, role, r.name, limit, err)
		}
		logger.Error(err, "Labelling own pod failed; retrying", "role", role, "retryIn", delay)
		timer := time.NewTimer(delay)
		select {
		case <-bounded.Done():
			timer.Stop()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %s=%s on pod %s not written within %s: %w", ErrRoleNotLabelled, RoleLabel, role, r.name, limit, err)
		case <-timer.C:
		}
		delay = min(2*delay, maxRoleRetry)
	}
}
