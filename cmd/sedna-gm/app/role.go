package app

import (
	"context"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"
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

// podRole writes RoleLabel on GM's own pod.
type podRole struct {
	pods typedcorev1.PodInterface
	name string
}

// podRoleFromEnv is the pod named by POD_NAME in POD_NAMESPACE (the Deployment sets both from
// the downward API), or nil when GM does not run in a pod (local Sedna, a test): nothing to label.
func podRoleFromEnv(kube kubernetes.Interface) *podRole {
	name, ns := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if name == "" || ns == "" {
		return nil
	}
	return &podRole{pods: kube.CoreV1().Pods(ns), name: name}
}

// set writes role on the pod, if it is not there already.
func (r *podRole) set(ctx context.Context, role string) error {
	if r == nil {
		return nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := r.pods.Get(ctx, r.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.Labels[RoleLabel] == role {
			return nil
		}
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[RoleLabel] = role
		_, err = r.pods.Update(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("labelling pod %s %s=%s: %w", r.name, RoleLabel, role, err)
	}
	klog.FromContext(ctx).Info("Labelled own pod", "pod", r.name, "label", RoleLabel, "role", role)
	return nil
}

// setUntilDone writes role, retrying every second until it is written or ctx ends (the leader
// keeps trying: until its pod is labelled no LC reaches it).
func (r *podRole) setUntilDone(ctx context.Context, role string) {
	if r == nil {
		return
	}
	_ = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		if err := r.set(ctx, role); err != nil {
			klog.FromContext(ctx).Error(err, "Labelling own pod failed; retrying")
			return false, nil
		}
		return true, nil
	}) // ends with ctx: the Lease is gone
}
