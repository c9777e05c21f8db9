package app

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
)

// The confinement mode of hostfs is visible: a gauge (1 openat2, 0 fallback) and a start-up log
// line, a warning naming what the fallback means.
func TestReportHostfsMode(t *testing.T) {
	for mode, want := range map[string]float64{hostfs.ModeBeneath: 1, hostfs.ModeOSRoot: 0} {
		t.Run(mode, func(t *testing.T) {
			var lines []string
			logger := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
			reg := prometheus.NewRegistry()
			reportHostfsMode(logger, reg, mode)
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sedna_lc_hostfs_openat2 1 when the LC opens host files below the data roots with openat2 (no symlink followed), 0 when it falls back to os.Root (symlinks that stay inside a root are followed).
# TYPE sedna_lc_hostfs_openat2 gauge
sedna_lc_hostfs_openat2 `+map[float64]string{1: "1", 0: "0"}[want]+`
`), "sedna_lc_hostfs_openat2"))
			require.Len(t, lines, 1)
			require.Contains(t, lines[0], `"hostfsMode"="`+mode+`"`)
			if mode == hostfs.ModeOSRoot {
				require.Contains(t, lines[0], "Warning")
				require.Contains(t, lines[0], "follows symlinks")
			} else {
				require.NotContains(t, lines[0], "Warning")
			}
		})
	}
}
