package controllers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	sednafake "github.com/sedna-go/sedna/pkg/client/clientset/versioned/fake"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// primingFeature watches ConfigMaps (so that syncing waits for their list) and counts primings.
type primingFeature struct{ primed *atomic.Int32 }

func (f primingFeature) Run(ctx context.Context, _ int) { <-ctx.Done() }

func (f primingFeature) PrimeDownstream(context.Context) error {
	f.primed.Add(1)
	return nil
}

// A leader that loses the Lease while the warm standby's Start still syncs returns from Run at
// once, and neither primes nor calls ready once the sync completes.
func TestRunReturnsWhenItsContextEndsDuringTheStandbySync(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	outer, stopOuter := context.WithCancel(ctx)
	defer stopOuter()

	kube := kubefake.NewClientset()
	listing, release := make(chan struct{}), make(chan struct{})
	var listed atomic.Bool
	kube.PrependReactor("list", "configmaps", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		if listed.CompareAndSwap(false, true) {
			close(listing)
		}
		<-release
		return false, nil, nil
	})
	var primed atomic.Int32
	registry := Registry{{Name: "Test", New: func(deps runtime.Dependencies) (runtime.FeatureController, error) {
		deps.KubeInformers.Core().V1().ConfigMaps().Informer()
		return primingFeature{primed: &primed}, nil
	}}}
	cfg := &config.Config{}
	cfg.SetDefaults()
	m := NewManager(cfg, registry, runtime.Dependencies{KubeClient: kube, SednaClient: sednafake.NewClientset()},
		func(string, runtime.ReportReceiver) {})

	startDone := make(chan error, 1)
	go func() { startDone <- m.Start(outer) }() // the warm standby
	<-listing                                   // the sync is under way, and waits for release

	leader, loseLease := context.WithCancel(ctx)
	var readied atomic.Bool
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(leader, func() { readied.Store(true) }) }()
	loseLease()
	// A guard against a hang, not a timing: Run must return while the sync is still blocked.
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("Run after the Lease was lost: %v", err)
		}
	case <-time.After(time.Minute):
		close(release)
		<-runDone //nolint:errcheck // failing anyway; the hang is what is reported
		t.Fatal("Run waited for the standby's sync after its context ended")
	}
	close(release)
	if err := <-startDone; err != nil {
		t.Fatalf("Start: %v", err)
	}
	if readied.Load() {
		t.Error("ready was called after the Lease was lost")
	}
	if n := primed.Load(); n != 0 {
		t.Errorf("primed %d times after the Lease was lost", n)
	}

	// A leader whose context is live is served once the sync is done.
	live, stop := context.WithCancel(ctx)
	defer stop()
	readyCh := make(chan struct{})
	go func() { runDone <- m.Run(live, func() { close(readyCh) }) }()
	<-readyCh
	if n := primed.Load(); n != 1 {
		t.Errorf("primed %d times, want 1", n)
	}
	stop()
	if err := <-runDone; err != nil {
		t.Errorf("Run: %v", err)
	}
}
