package app

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"
)

// The command's loggers keep the values they carry in a context (the node of a connection, the
// feature of a controller), though component-base's cli.Run, which runs it, turns contextual
// logging off before the command runs.
func TestTheCommandKeepsContextualLoggers(t *testing.T) {
	t.Cleanup(func() { klog.EnableContextualLogging(true) })
	logs.InitLogs() // what cli.Run does first
	carried := klog.Background().WithValues("node", "edge-1")
	lost := klog.FromContext(klog.NewContext(context.Background(), carried))
	require.NotEqual(t, carried.GetSink(), lost.GetSink(), "InitLogs no longer turns contextual logging off: this test checks nothing")

	cmd := NewCommand()
	cmd.PersistentPreRun(cmd, nil)
	kept := klog.FromContext(klog.NewContext(context.Background(), carried))
	require.Equal(t, carried.GetSink(), kept.GetSink(), "the logger a context carries was dropped")
}
