//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/test/chaos"
	"github.com/sedna-go/sedna/test/e2e/framework"
)

// A short fault campaign (test/chaos) with a fixed seed: twelve faults — LC, GM and worker
// kills, apiserver and etcd restarts, LC freezes — while the joint inference example answers
// a steady load; then every invariant of the campaign's table must hold. The suite's local
// Sedna has no relay or standby GM (make chaos runs the full campaign with both).
func TestChaosShortCampaign(t *testing.T) {
	ns := framework.NewNamespace(t)
	res, err := chaos.Run(context.Background(), framework.Sedna, chaos.Config{
		Namespace: ns, Seed: 20261205, Faults: 12, Duration: 3 * time.Minute, Logf: t.Logf,
	})
	if res != nil {
		t.Log("\n" + res.Table())
	}
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Injected, 10)
	require.Empty(t, res.Failed(), "invariants that did not hold")
}
