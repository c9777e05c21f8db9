package logging

import (
	"context"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"k8s.io/component-base/cli"
	"k8s.io/klog/v2"
)

// A command run as Sedna's commands are (component-base's cli.Run) keeps the loggers that
// contexts carry.
func TestACommandRunByCLIRunKeepsContextualLoggers(t *testing.T) {
	t.Cleanup(func() { klog.EnableContextualLogging(true) })
	carried := klog.Background().WithValues("node", "edge-1")
	run := func(keep bool) (sameSink bool) {
		cmd := &cobra.Command{Use: "x", SilenceUsage: true, RunE: func(*cobra.Command, []string) error {
			got := klog.FromContext(klog.NewContext(context.Background(), carried))
			sameSink = got.GetSink() == carried.GetSink()
			return nil
		}}
		if keep {
			KeepContextualLoggers(cmd)
		}
		cmd.SetArgs(nil)
		require.Equal(t, 0, cli.Run(cmd))
		return sameSink
	}
	require.False(t, run(false), "cli.Run no longer turns contextual logging off: this test checks nothing")
	require.True(t, run(true), "the logger a context carries was dropped")
}
