// Command sedna-pause is the infrastructure ("sandbox") container of a pod: it holds the pod's
// namespaces open and does nothing else. Container runtimes start one per pod (containerd's
// sandbox_image); `make images` builds it as kubeedge/sedna-pause so that an air-gapped node — and
// the real-node tests, which can pull nothing — have one without a registry.
//
// It sleeps until SIGINT or SIGTERM and then exits 0. As the pod's PID 1 when the pod shares its
// process namespace, it reaps every child that is left to it, so no zombie accumulates.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		// Like upstream's pause, it takes no arguments; -v only says what it is.
		fmt.Println("sedna-pause: holds a pod's namespaces; no arguments")
		if os.Args[1] == "-v" || os.Args[1] == "--version" {
			return
		}
		os.Exit(2)
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
