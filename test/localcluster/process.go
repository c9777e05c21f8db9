package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// stopTimeout is how long a process gets to exit after SIGTERM before it is killed. The apiserver
// drains requests on SIGTERM; a few seconds are plenty on an idle local cluster.
const stopTimeout = 10 * time.Second

// logTailBytes is how much of a failing process's log goes into the returned error: enough for the
// fatal line and the few lines before it.
const logTailBytes = 4096

// process is one started control-plane binary.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	// done is closed once the process has exited and been reaped; err is then its exit error.
	done chan struct{}
	err  error
}

// startProcess starts binary with args, its stdout and stderr written to logDir/<name>.log
// (truncated first, so a start failure's log tail is about this run).
func startProcess(ctx context.Context, name, binary, logDir string, args []string) (*process, error) {
	return startProcessLog(ctx, name, binary, filepath.Join(logDir, name+".log"), os.O_TRUNC, args)
}

// startProcessLog is startProcess with the log's path and open flag (O_TRUNC, or O_APPEND for a
// restart, which keeps the previous run's log).
func startProcessLog(ctx context.Context, name, binary, logPath string, flag int, args []string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s: %w", name, err)
	}
	// Not exec.CommandContext: the processes must outlive Start's context and end only in Stop.
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close() // the start error is the one worth reporting
		return nil, fmt.Errorf("starting %s (%s): %w", name, binary, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	klog.FromContext(ctx).V(2).Info("Started control-plane process", "name", name, "pid", cmd.Process.Pid, "log", logPath)
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM, then SIGKILL after stopTimeout, and waits until the process is reaped.
func (p *process) stop(logger klog.Logger) error {
	defer func() { _ = p.logFile.Close() }() // the process may still hold its copy; ours is only for writing
	if done, _ := p.exited(); done {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGTERM to %s (pid %d): %w", p.name, p.pid(), err)
	}
	select {
	case <-p.done:
		logger.V(2).Info("Stopped control-plane process", "name", p.name, "pid", p.pid())
		return nil
	case <-time.After(stopTimeout):
	}
	logger.Info("Control-plane process ignored SIGTERM, killing it", "name", p.name, "pid", p.pid(), "timeout", stopTimeout)
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s (pid %d): %w", p.name, p.pid(), err)
	}
	<-p.done
	return nil
}

// logTail returns the end of the process's log, for error messages.
func (p *process) logTail() string {
	return tailFile(p.logPath, logTailBytes)
}

func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", path, err)
	}
	defer func() { _ = f.Close() }() // read-only
	info, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", path, err)
	}
	if info.Size() > n {
		if _, err := f.Seek(info.Size()-n, io.SeekStart); err != nil {
			return fmt.Sprintf("(log %s unreadable: %v)", path, err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", path, err)
	}
	if info.Size() > n {
		// Drop the partial first line.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}
