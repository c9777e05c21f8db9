package localcluster

import (
	"context"
	"fmt"
	"os"
	"syscall"
)

// Restart ends the control-plane process called name (etcd, kube-apiserver,
// kube-controller-manager or kube-scheduler) — with SIGKILL when kill is set, as a crash would,
// else gracefully — and starts it again with the same arguments and data (etcd keeps its data
// directory), appending to its log. It returns once the apiserver answers /readyz again, which
// includes its etcd check. It must not run concurrently with Stop or another Restart.
func (c *Cluster) Restart(ctx context.Context, name string, kill bool) error {
	index := -1
	for i, p := range c.processes {
		if p.name == name {
			index = i
		}
	}
	if index < 0 {
		return fmt.Errorf("no control-plane process called %s", name)
	}
	old := c.processes[index]
	if kill {
		if done, _ := old.exited(); !done {
			if err := old.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				return fmt.Errorf("killing %s: %w", name, err)
			}
		}
		<-old.done
		_ = old.logFile.Close() // ours is only for writing
	} else if err := old.stop(c.logger); err != nil {
		return err
	}
	proc, err := startProcessLog(ctx, name, old.cmd.Path, old.logPath, os.O_APPEND, old.cmd.Args[1:])
	if err != nil {
		return err
	}
	c.processes[index] = proc
	apiserver := proc
	for _, p := range c.processes {
		if p.name == "kube-apiserver" {
			apiserver = p
		}
	}
	return c.waitAPIServerReady(ctx, apiserver)
}
