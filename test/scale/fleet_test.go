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

// fleetSizes are the node counts, from SCALE_FLEET_N ("100,1000,5000" by default; the LCs run in
// shard processes of SCALE_LCS_PER_PROCESS, 1,000 by default).
func fleetSizes(t *testing.T) []int {
	raw := os.Getenv("SCALE_FLEET_N")
	if raw == "" {
		raw = "100,1000,5000"
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
		var r FleetResult
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			// The defaults are the measured configuration (docs/performance.md): 5 reports per
			// LC and min(N, 1,000) workload objects.
			reports := envInt(t, "SCALE_REPORTS_PER_LC")
			if reports == 0 {
				reports = 5
			}
			objects := envInt(t, "SCALE_FLEET_OBJECTS")
			if objects < 0 {
				objects = 0
			} else if objects == 0 {
				objects = min(n, 1000)
			}
			r = RunFleet(ctx, t, t.TempDir(), FleetOptions{Nodes: n, ReportsPerLC: reports, RestWindow: 30 * time.Second,
				Failover: true, LeaseDuration: 15 * time.Second, Objects: objects, ReportRate: float64(envInt(t, "SCALE_REPORT_RATE"))})
			results = append(results, r)
		})
		// A run leaves no process behind: the subtest's cleanups stopped everything it started.
		if len(r.PIDs) > 0 {
			require.Empty(t, Alive(r.PIDs), "processes left behind by the fleet of %d nodes", n)
		}
		// The tables so far, so that a later size that fails or is interrupted loses nothing.
		printFleet(t, results)
	}
}

func printFleet(t *testing.T, results []FleetResult) {
	var b strings.Builder
	fmt.Fprintln(&b, "\n| nodes (= datasets) | LCs hold their snapshot | GM RSS at rest | per node | GM CPU at rest | GM requests in the rest window |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Fprintf(&b, "| %d | %s | %.0f MiB | %.1f KiB | %.3f cores | %s in %s |\n", r.Nodes, r.Snapshot.Round(time.Millisecond),
			float64(r.RSS)/(1<<20), float64(r.RSS)/1024/float64(r.Nodes), r.CPUCores, formatCounts(r.RestRequests), r.RestWindow)
	}
	fmt.Fprintln(&b, "\n| nodes | objects (JI + IL) | converged (every child, every LC holds its objects) | children | GM RSS before → after | per object | GM's API requests while converging |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.Objects == 0 {
			continue
		}
		perObject := (float64(r.RSSAfterWorkload) - float64(r.RSSBeforeWorkload)) / 1024 / float64(r.Objects)
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %.0f → %.0f MiB | %.1f KiB | %s |\n", r.Nodes, r.Objects, r.WorkloadConverge.Round(time.Millisecond),
			r.WorkloadCounts, float64(r.RSSBeforeWorkload)/(1<<20), float64(r.RSSAfterWorkload)/(1<<20), perObject,
			formatCounts(r.WorkloadRequestsPerKind))
	}
	fmt.Fprintln(&b, "\n| nodes | reports | reports/s to status | end-to-end p99 | Dataset status writes | reports per write |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|")
	for _, r := range results {
		perWrite := 0.0
		if r.StatusWrites > 0 {
			perWrite = float64(r.Reports) / float64(r.StatusWrites)
		}
		fmt.Fprintf(&b, "| %d | %d | %.0f | %s | %d | %.1f |\n", r.Nodes, r.Reports, r.ReportRate, r.ReportP99.Round(time.Millisecond),
			r.StatusWrites, perWrite)
	}
	fmt.Fprintln(&b, "\n| nodes | load average | RSS: leader GM, standby GM, kube-apiserver, etcd, KWOK, LC shard processes (N LCs), test process |")
	fmt.Fprintln(&b, "|---|---|---|")
	for _, r := range results {
		rss := r.RSSAfterWorkload
		if rss == 0 {
			rss = r.RSS
		}
		mib := func(v uint64) string { return fmt.Sprintf("%.0f MiB", float64(v)/(1<<20)) }
		fmt.Fprintf(&b, "| %d | %s | %s, %s, %s, %s, %s, %s, %s |\n", r.Nodes, r.LoadAvg, mib(rss), mib(r.ProcessRSS["standby GM"]),
			mib(r.ProcessRSS["kube-apiserver"]), mib(r.ProcessRSS["etcd"]), mib(r.ProcessRSS["kwok"]), mib(r.ProcessRSS["LC shards"]), mib(r.ProcessRSS["test process"]))
	}
	fmt.Fprintln(&b, "\n| nodes | failover: SIGKILL → every LC re-synced | → standby acquired the Lease | → serving LCs | → every LC connected | LC dials during the failover | lease | goal (lease + 10 s) | GM restarts before (lost Lease) | new leader's open files (soft limit) |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		verdict := "met"
		if r.Failover > r.LeaseDuration+10*time.Second {
			verdict = "not met"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %d | %d (%d) |\n", r.Nodes, r.Failover.Round(time.Millisecond),
			r.FailoverAcquired.Round(time.Millisecond), r.FailoverServing.Round(time.Millisecond), r.FailoverConnected.Round(time.Millisecond),
			formatCounts(r.FailoverDials), r.LeaseDuration, verdict, r.GMRestarts, r.GMOpenFiles, r.GMOpenFilesLimit)
	}
	for _, r := range results {
		if r.FailoverReviews != "" {
			fmt.Fprintf(&b, "\nTokenReviews during the failover, %d nodes: %s\n", r.Nodes, r.FailoverReviews)
		}
	}
	for _, r := range results {
		if r.FailoverProfile != "" {
			fmt.Fprintf(&b, "\nThe new leader's CPU profile from the SIGKILL over lease + 20 s, %d nodes:\n\n```\n%s```\n", r.Nodes, r.FailoverProfile)
		}
		if r.FailoverShardProfile != "" {
			fmt.Fprintf(&b, "\nThe LC shards' CPU profiles (merged) from the SIGKILL until every LC held the new snapshot, %d nodes:\n\n```\n%s```\n", r.Nodes, r.FailoverShardProfile)
		}
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
