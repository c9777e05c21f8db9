package app

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
)

// GM's pod carries standby, then leader; the label is written once per change, and without
// POD_NAME (not in a pod) nothing is labelled.
func TestPodRole(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	kube := fake.NewClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "sedna-gm-1", Namespace: "sedna", Labels: map[string]string{"app.kubernetes.io/name": "sedna-gm", RoleLabel: RoleLeader},
	}})
	t.Setenv("POD_NAME", "")
	t.Setenv("POD_NAMESPACE", "sedna")
	if r := podRoleFromEnv(kube); r != nil {
		t.Fatalf("a role without POD_NAME: %+v", r)
	}
	t.Setenv("POD_NAME", "sedna-gm-1")
	r := podRoleFromEnv(kube)
	if r == nil {
		t.Fatal("no role with POD_NAME and POD_NAMESPACE set")
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
	if err := r.set(ctx, RoleStandby); err != nil {
		t.Fatal(err)
	}
	if got := label(); got != RoleStandby {
		t.Fatalf("after start-up: %q, want %q", got, RoleStandby)
	}
	updates := func() int {
		n := 0
		for _, a := range kube.Actions() {
			if a.GetVerb() == "update" {
				n++
			}
		}
		return n
	}
	before := updates()
	if err := r.set(ctx, RoleStandby); err != nil {
		t.Fatal(err)
	}
	if updates() != before {
		t.Error("an unchanged role was written again")
	}
	r.setUntilDone(ctx, RoleLeader)
	if got := label(); got != RoleLeader {
		t.Fatalf("after leading: %q, want %q", got, RoleLeader)
	}
	// A pod that is gone: an error naming it.
	if err := (&podRole{pods: kube.CoreV1().Pods("sedna"), name: "gone"}).set(ctx, RoleLeader); err == nil {
		t.Error("labelling a missing pod succeeded")
	}
	var nilRole *podRole
	if err := nilRole.set(context.Background(), RoleLeader); err != nil {
		t.Errorf("nil role: %v", err)
	}
}
