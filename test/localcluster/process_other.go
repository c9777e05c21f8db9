//go:build !linux

package localcluster

import "syscall"

// sysProcAttr puts each process in its own process group, so a terminal's Ctrl-C reaches only the
// test, which then calls Stop in order. Outside Linux there is no parent-death signal.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
