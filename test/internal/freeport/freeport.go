// Package freeport picks the loopback TCP ports of the processes tests start.
//
// A port a test finds free, closes and hands to a process can be taken before the process binds
// it. Ports from bind(":0") come from the kernel's ephemeral range, and so does the source port of
// every outgoing connection; `make test` runs two packages at once, each with a control plane
// whose clients open connections by the thousand. Loopback therefore draws its ports at random
// from 20000–29999, below the ephemeral range (32768–60999 by default) and Kubernetes' NodePort
// range (30000–32767), where neither can land; another test drawing the same port is the only
// collision left, and each draw is checked by binding it.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

const (
	low  = 20000
	high = 29999
	// attempts bounds the draws for one port (a busy port is drawn again).
	attempts = 200
)

// Loopback returns n distinct TCP ports free on 127.0.0.1 now. They are held until all n are
// found, so one call never returns a port twice.
func Loopback(n int) ([]int, error) { return On("127.0.0.1", n) }

// On returns n distinct TCP ports free on host now ("" for every address), as Loopback does.
func On(host string, n int) ([]int, error) {
	if ephemeralLow() <= high {
		// A machine whose ephemeral range reaches down here: the kernel's own picks are as good.
		return kernelPicks(host, n)
	}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close() // only a reservation
		}
	}()
	ports := make([]int, 0, n)
	for len(ports) < n {
		l, err := draw(host)
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// One returns one TCP port free on 127.0.0.1 now.
func One() (int, error) {
	ports, err := Loopback(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

func draw(host string) (net.Listener, error) {
	var last error
	for range attempts {
		port := low + rand.IntN(high-low+1)
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return l, nil
		}
		last = err
	}
	return nil, fmt.Errorf("no free port on %q in %d–%d after %d draws: %w", host, low, high, attempts, last)
}

func kernelPicks(host string, n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("reserving a port on %q: %w", host, err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux), or 0 when unknown.
func ephemeralLow() int {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(raw))
	if len(fields) != 2 {
		return 0
	}
	first, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0
	}
	return first
}
