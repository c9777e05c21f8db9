package localcluster

import "syscall"

// sysProcAttr puts each process in its own process group, so a terminal's Ctrl-C reaches only the
// test (which then calls Stop in order), and asks the kernel to SIGKILL it if the test process dies
// without calling Stop, so that no etcd or apiserver is left holding ports and data.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
