// Package logging holds what Sedna's commands share about their logs.
package logging

import (
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

// KeepContextualLoggers makes cmd turn klog's contextual logging back on before it runs:
// component-base's cli.Run, which runs the command, turns it off (logs.InitLogs), and then every
// value a logger carries in a context (a connection's node, a controller's feature, a report's
// sequence number) is dropped from the logs.
func KeepContextualLoggers(cmd *cobra.Command) {
	cmd.PersistentPreRun = func(*cobra.Command, []string) { klog.EnableContextualLogging(true) }
}
