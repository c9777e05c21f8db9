package app

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/integration/framework"
)

func gmPod(role string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "sedna-gm-1", Namespace: "sedna", Labels: map[string]string{"app.kubernetes.io/name": "sedna-gm", RoleLabel: role},
	}}
}

// GM's pod carries standby, then leader; the label is written once per change, with a merge
// patch of that label only (never a full-object update), and without POD_NAME (not in a pod)
// nothing is labelled.
func TestPodRole(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	kube := fake.NewClientset(gmPod(RoleLeader))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("POD_NAME", "")
	t.Setenv("POD_NAMESPACE", "sedna")
	if r, err := podRoleFromEnv(kube); r != nil || err != nil {
		t.Fatalf("outside a cluster without POD_NAME: %+v, %v", r, err)
	}
	t.Setenv("POD_NAME", "sedna-gm-1")
	r, err := podRoleFromEnv(kube)
	if r == nil || err != nil {
		t.Fatalf("no role with POD_NAME and POD_NAMESPACE set: %v", err)
	}
	label := func() string {
		pod, err := kube.CoreV1().Pods("sedna").Get(ctx, "sedna-gm-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pod.Labels["app.kubernetes.io/name"] != "sedna-gm" {
			t.Errorf("other labels lost: %v", pod.Labels)
		}
		return pod.Labels[RoleLabel]
	}
	// A restarted leader is a standby until it leads again.
	if err := r.setWithin(ctx, RoleStandby, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := label(); got != RoleStandby {
		t.Fatalf("after start-up: %q, want %q", got, RoleStandby)
	}
	writes := func() (patches int) {
		for _, a := range kube.Actions() {
			switch a.GetVerb() {
			case "update":
				t.Errorf("a full-object update of the pod: %v", a)
			case "patch":
				p := a.(k8stesting.PatchAction)
				if p.GetPatchType() != types.MergePatchType {
					t.Errorf("patch type %s, want a merge patch", p.GetPatchType())
				}
				want := `{"metadata":{"labels":{"` + RoleLabel + `":"`
				if !strings.HasPrefix(string(p.GetPatch()), want) || strings.Count(string(p.GetPatch()), ":") != 3 {
					t.Errorf("the patch writes more than the role label: %s", p.GetPatch())
				}
				patches++
			}
		}
		return patches
	}
	before := writes()
	if before != 1 {
		t.Errorf("%d patches for one change", before)
	}
	if err := r.set(ctx, RoleStandby); err != nil {
		t.Fatal(err)
	}
	if writes() != before {
		t.Error("an unchanged role was written again")
	}
	if err := r.setWithin(ctx, RoleLeader, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := label(); got != RoleLeader {
		t.Fatalf("after leading: %q, want %q", got, RoleLeader)
	}
	// A pod that is gone: an error naming it.
	if err := (&podRole{pods: kube.CoreV1().Pods("sedna"), name: "gone"}).set(ctx, RoleLeader); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("labelling a missing pod: %v", err)
	}
	var nilRole *podRole
	if err := nilRole.setWithin(context.Background(), RoleLeader, time.Minute); err != nil {
		t.Errorf("nil role: %v", err)
	}
}

// In a pod (KUBERNETES_SERVICE_HOST set) without POD_NAME or POD_NAMESPACE, GM cannot label its
// pod: an error names both variables and the Service that selects the label.
func TestPodRoleFromEnvInAPodWithoutItsName(t *testing.T) {
	kube := fake.NewClientset()
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
	for _, env := range [][2]string{{"", "sedna"}, {"sedna-gm-1", ""}} {
		t.Setenv("POD_NAME", env[0])
		t.Setenv("POD_NAMESPACE", env[1])
		r, err := podRoleFromEnv(kube)
		require.Nil(t, r)
		require.Error(t, err)
		for _, part := range []string{"POD_NAME", "POD_NAMESPACE", "gm Service", RoleLabel} {
			require.ErrorContains(t, err, part)
		}
	}
}

// Any API error (not only a conflict) is retried until the label is written; an error that
// lasts past the limit is ErrRoleNotLabelled.
func TestSetWithinRetriesAnyErrorThenGivesUp(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	kube := fake.NewClientset(gmPod(RoleLeader))
	var failures atomic.Int32
	failures.Store(3)
	kube.PrependReactor("get", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		if failures.Add(-1) >= 0 {
			return true, nil, apierrors.NewServiceUnavailable("the API server is restarting")
		}
		return false, nil, nil
	})
	r := &podRole{pods: kube.CoreV1().Pods("sedna"), name: "sedna-gm-1", retry: time.Millisecond}
	require.NoError(t, r.setWithin(ctx, RoleStandby, time.Minute), "transient errors were not retried")
	pod, err := kube.CoreV1().Pods("sedna").Get(ctx, "sedna-gm-1", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, RoleStandby, pod.Labels[RoleLabel])

	kube.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		return true, nil, apierrors.NewInternalError(errors.New("webhook timed out"))
	})
	err = r.setWithin(ctx, RoleLeader, 50*time.Millisecond)
	require.ErrorIs(t, err, ErrRoleNotLabelled)
	require.ErrorContains(t, err, "webhook timed out")

	// The caller's context ending is not a labelling failure.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = r.setWithin(cancelled, RoleLeader, time.Minute)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrRoleNotLabelled)
}

// A leader whose pod cannot be labelled leader (the gm Service selects that label) does not sit
// on the Lease serving nobody: once the lease duration passed, run returns ErrRoleNotLabelled
// and the Lease is released for the standby.
func TestALeaderThatCannotBeLabelledGivesUpTheLease(t *testing.T) {
	port, err := framework.FreePort()
	require.NoError(t, err)
	cfg := testConfig(t, port)
	c, kube := fakeClients()
	_, err = kube.CoreV1().Pods("sedna").Create(context.Background(), gmPod(RoleLeader), metav1.CreateOptions{})
	require.NoError(t, err)
	kube.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		if strings.Contains(string(a.(k8stesting.PatchAction).GetPatch()), RoleLeader) {
			return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "sedna-gm-1", errors.New("denied by policy"))
		}
		return false, nil, nil
	})
	c.role = &podRole{pods: kube.CoreV1().Pods("sedna"), name: "sedna-gm-1", retry: 10 * time.Millisecond}

	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, "gm-a", c) }()
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a guard against a hang, not a timing
		t.Fatal("GM kept the Lease although its pod cannot be labelled leader")
	}
	require.ErrorIs(t, err, ErrRoleNotLabelled)
	require.ErrorContains(t, err, "denied by policy")
	require.Empty(t, leaseHolder(t, kube), "GM still holds the Lease")
	pod, err := kube.CoreV1().Pods("sedna").Get(context.Background(), "sedna-gm-1", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, RoleStandby, pod.Labels[RoleLabel], "the start-up standby label was not written")
}
