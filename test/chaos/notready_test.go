package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLongestQuietIsTheLongestStretchNoDisturbanceOverlaps(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	window := interval{at(0), at(60)}
	for _, tc := range []struct {
		name      string
		disturbed []interval
		want      time.Duration
	}{
		{"nothing", nil, 60 * time.Second},
		{"before and after the window", []interval{{at(-20), at(-1)}, {at(61), at(70)}}, 60 * time.Second},
		{"overlapping its start", []interval{{at(-5), at(10)}}, 50 * time.Second},
		{"unsorted, overlapping each other", []interval{{at(40), at(45)}, {at(5), at(20)}, {at(15), at(25)}}, 15 * time.Second},
		{"covering it", []interval{{at(-1), at(61)}}, 0},
		{"a gap at its end", []interval{{at(0), at(52)}}, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, longestQuiet(window, tc.disturbed))
		})
	}
}

// A long partition whose node stayed Ready fails the row when the control plane was quiet once
// the node was due NotReady, and is counted apart when a restart left no quiet stretch.
func TestNotReadyRowExcusesOnlyADisturbedControlPlane(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	row := func(c *campaign) Row {
		var rows []Row
		c.notReadyRow(func(inv, want, got string, ok bool) { rows = append(rows, Row{inv, want, got, ok}) })
		require.Len(t, rows, 1)
		return rows[0]
	}
	quiet := &campaign{longCuts: []longCut{{node: "edge-node-1", span: interval{at(0), at(90)}}}}
	require.False(t, row(quiet).OK, "a node left Ready by a quiet 90 s partition: %+v", row(quiet))

	disturbed := &campaign{
		longCuts:     []longCut{{node: "edge-node-1", span: interval{at(0), at(90)}}, {node: "edge-node-2", span: interval{at(0), at(70)}, notReady: true}},
		controlPlane: []interval{{at(45), at(62)}},
	}
	r := row(disturbed)
	require.True(t, r.OK, "%+v", r)
	require.Equal(t, "0", r.Want)
	require.Contains(t, r.Got, "of 2 more")
	require.Contains(t, r.Got, "1 NotReady too")

	// A cut that falls into a restart is due NotReady only from the end of its settling on: a
	// quiet stretch before that does not count.
	intoRestart := &campaign{
		longCuts: []longCut{{node: "edge-node-1", span: interval{at(0), at(80)}},
			{node: "edge-node-2", span: interval{at(100), at(170)}, notReady: true}},
		controlPlane: []interval{{at(-10), at(5)}},
	}
	r = row(intoRestart)
	require.True(t, r.OK, "%+v", r)
	require.Equal(t, "1", r.Want)

	// Long partitions none of which left its node NotReady show nothing, whatever excused them.
	none := &campaign{
		longCuts:     []longCut{{node: "edge-node-1", span: interval{at(0), at(70)}}, {node: "edge-node-2", span: interval{at(0), at(70)}, unknown: true}},
		controlPlane: []interval{{at(45), at(62)}},
	}
	r = row(none)
	require.False(t, r.OK, "%+v", r)
	require.Contains(t, r.Got, "1 not read")

	// A restart early in the partition leaves a quiet stretch once the node is due NotReady.
	early := &campaign{
		longCuts:     []longCut{{node: "edge-node-1", span: interval{at(0), at(120)}, notReady: true}},
		controlPlane: []interval{{at(10), at(20)}},
	}
	r = row(early)
	require.True(t, r.OK, "%+v", r)
	require.Equal(t, "1", r.Want)
	require.True(t, strings.HasPrefix(r.Got, "1 "), "%+v", r)
}
