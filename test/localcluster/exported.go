package localcluster

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"k8s.io/klog/v2"
)

// Process is a long-running program the harness started (sedna-gm in local Sedna), with the same
// lifecycle guarantees as the control-plane processes: its own process group, killed by the
// kernel if the harness dies, and its output in logDir/<name>.log.
type Process struct {
	p      *process
	logger klog.Logger
}

// StartProcess starts binary with args; the log file is truncated first.
func StartProcess(ctx context.Context, name, binary, logDir string, args []string) (*Process, error) {
	p, err := startProcess(ctx, name, binary, logDir, args)
	if err != nil {
		return nil, err
	}
	return &Process{p: p, logger: klog.FromContext(ctx)}, nil
}

// RestartProcess is StartProcess for a restart: the output is appended to logDir/<name>.log,
// so what the previous run logged is kept.
func RestartProcess(ctx context.Context, name, binary, logDir string, args []string) (*Process, error) {
	p, err := startProcessLog(ctx, name, binary, filepath.Join(logDir, name+".log"), os.O_APPEND, args)
	if err != nil {
		return nil, err
	}
	return &Process{p: p, logger: klog.FromContext(ctx)}, nil
}

// PID is the process ID.
func (p *Process) PID() int { return p.p.pid() }

// LogPath is the file the process writes its output to.
func (p *Process) LogPath() string { return p.p.logPath }

// LogTail is the end of the process's log.
func (p *Process) LogTail() string { return p.p.logTail() }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.p.done }

// Exited reports whether the process has ended, and its exit error.
func (p *Process) Exited() (bool, error) { return p.p.exited() }

// Stop sends SIGTERM, then SIGKILL after a grace period, and waits until the process is reaped.
func (p *Process) Stop() error { return p.p.stop(p.logger) }

// Kill sends SIGKILL, as a crash would, and waits until the process is reaped.
func (p *Process) Kill() error {
	if done, _ := p.p.exited(); !done {
		if err := p.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return err
		}
	}
	<-p.p.done
	_ = p.p.logFile.Close() // ours is only for writing
	return nil
}
