//go:build e2e

// Package fleet runs the scale test's fleet (test/scale: KWOK nodes, simulated LCs with
// pod-bound tokens, two sedna-gm processes) in a small configuration, so it cannot rot. Its
// timings go to docs/performance.md through `make scale`, not here.
package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/scale"
)

func TestSmallFleet(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const nodes, reports, objects = 10, 5, 10
	var r scale.FleetResult
	t.Run("run", func(t *testing.T) {
		r = scale.RunFleet(ctx, t, t.TempDir(), scale.FleetOptions{Nodes: nodes, ReportsPerLC: reports,
			RestWindow: 5 * time.Second, Failover: true, LeaseDuration: 10 * time.Second, Objects: objects})
	})
	require.False(t, t.Failed())
	// The subtest's cleanups have run: nothing the fleet started may still be running.
	require.NotEmpty(t, r.PIDs)
	require.Empty(t, scale.Alive(r.PIDs), "processes left behind")
	t.Logf("fleet of %d: %+v", nodes, r)
	// RunFleet has waited for every LC's snapshot, before and after the leader's SIGKILL, and for
	// every workload object's children and its copy on its LC.
	require.Equal(t, scale.ExpectedChildren(objects), r.WorkloadCounts.String())
	require.Equal(t, nodes*reports, r.Reports, "every report reached the dataset's status")
	require.Positive(t, r.StatusWrites)
	require.LessOrEqual(t, r.StatusWrites, r.Reports, "GM writes a dataset's status at most once per report")
	require.Positive(t, r.FailoverAcquired)
	require.LessOrEqual(t, r.FailoverAcquired, r.FailoverServing, "the standby serves after it acquired the Lease")
	for request, count := range r.RestRequests {
		verb, resource, _ := strings.Cut(request, " ")
		if verb == "get" || verb == "watch" || resource == "leases" || resource == "tokenreviews" {
			// Reads; the leader's Lease renewals; and the periodic review of each connection's
			// token (a create that stores nothing), so no connection outlives its LC pod.
			continue
		}
		t.Errorf("GM wrote at rest: %s ×%d", request, count)
	}
}
