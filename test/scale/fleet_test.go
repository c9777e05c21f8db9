//go:build scale

package scale

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
)

// fleetSizes are the node counts, from SCALE_FLEET_N ("100,1000" by default).
func fleetSizes(t *testing.T) []int {
	raw := os.Getenv("SCALE_FLEET_N")
	if raw == "" {
		raw = "100,1000"
	}
	var out []int
	for _, s := range strings.Split(raw, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		require.NoError(t, err, "SCALE_FLEET_N must be a comma-separated list of positive integers, got %q", raw)
		require.Positive(t, n)
		out = append(out, n)
	}
	return out
}

// TestFleet runs, for each N, N KWOK nodes with N simulated LCs against two sedna-gm processes
// and prints the snapshot, steady-state, report and failover tables.
func TestFleet(t *testing.T) {
	var results []FleetResult
	for _, n := range fleetSizes(t) {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			reports := envInt(t, "SCALE_REPORTS_PER_LC")
			if reports == 0 {
				reports = 10
			}
			r := RunFleet(ctx, t, t.TempDir(), FleetOptions{Nodes: n, ReportsPerLC: reports, RestWindow: 30 * time.Second,
				Failover: true, LeaseDuration: 15 * time.Second})
			results = append(results, r)
			// A run leaves no process behind: everything is stopped by the subtest's cleanups.
		})
	}
	printFleet(t, results)
}

func printFleet(t *testing.T, results []FleetResult) {
	var b strings.Builder
	fmt.Fprintln(&b, "\n| nodes (= datasets) | LCs hold their snapshot | GM RSS at rest | per node | GM CPU at rest | GM requests in the rest window |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Fprintf(&b, "| %d | %s | %.0f MiB | %.1f KiB | %.3f cores | %s in %s |\n", r.Nodes, r.Snapshot.Round(time.Millisecond),
			float64(r.RSS)/(1<<20), float64(r.RSS)/1024/float64(r.Nodes), r.CPUCores, formatCounts(r.RestRequests), r.RestWindow)
	}
	fmt.Fprintln(&b, "\n| nodes | reports | reports/s to status | end-to-end p99 |")
	fmt.Fprintln(&b, "|---|---|---|---|")
	for _, r := range results {
		fmt.Fprintf(&b, "| %d | %d | %.0f | %s |\n", r.Nodes, r.Reports, r.ReportRate, r.ReportP99.Round(time.Millisecond))
	}
	fmt.Fprintln(&b, "\n| nodes | failover: SIGKILL → every LC re-synced | → standby acquired the Lease | → serving LCs | → every LC connected | LC dials during the failover | lease | goal (lease + 10 s) |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		verdict := "met"
		if r.Failover > r.LeaseDuration+10*time.Second {
			verdict = "not met"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", r.Nodes, r.Failover.Round(time.Millisecond),
			r.FailoverAcquired.Round(time.Millisecond), r.FailoverServing.Round(time.Millisecond), r.FailoverConnected.Round(time.Millisecond),
			formatCounts(r.FailoverDials), r.LeaseDuration, verdict)
	}
	t.Log(b.String())
}

func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
