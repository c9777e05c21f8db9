package scale

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startFront stands for the gm Service in front of the GMs: it forwards each connection to the
// first GM that accepts it (the leader, since a standby does not listen) and returns the wss://
// address the LCs dial.
//
// While no GM serves (a failover), the front does not listen at all, so a dial is refused at
// connect, as a Service without a ready endpoint refuses it (kube-proxy rejects the SYN). An
// earlier front accepted every connection and reset it once it found no GM: each LC had by then
// sent its TLS ClientHello, so every refused dial cost the LC a post-quantum key share, which a
// real Service never makes it pay (59,035 such dials in a 5,000-node failover, 19 % of the
// simulated fleet's CPU). It listens again, on the same address, once a GM answers /readyz.
func startFront(t testing.TB, gms []*gmProcess) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	f := &front{addr: ln.Addr().String(), gms: gms, ln: ln}
	f.wg.Go(func() { f.run(ctx, t) })
	t.Cleanup(func() {
		cancel()
		f.closeListener()
		f.wg.Wait()
	})
	return "wss://" + f.addr + "/"
}

type front struct {
	addr string
	gms  []*gmProcess
	wg   sync.WaitGroup

	mu sync.Mutex
	ln net.Listener // nil while no GM serves
}

// run accepts until no GM serves, waits until one does, listens again, and so on until ctx ends.
func (f *front) run(ctx context.Context, t testing.TB) {
	for {
		f.mu.Lock()
		ln := f.ln
		f.mu.Unlock()
		if ln != nil {
			f.accept(ln)
		}
		if ctx.Err() != nil {
			return
		}
		if !f.waitForAServingGM(ctx) {
			return
		}
		ln, err := listenAgain(ctx, f.addr)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("the front cannot listen on %s again: %v", f.addr, err)
			}
			return
		}
		f.mu.Lock()
		f.ln = ln
		f.mu.Unlock()
		if ctx.Err() != nil {
			f.closeListener()
			return
		}
	}
}

// accept serves ln until it is closed: by a connection that found no GM, or by the test's end.
func (f *front) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		f.wg.Go(func() { f.forward(conn, ln) })
	}
}

func (f *front) forward(conn net.Conn, ln net.Listener) {
	defer func() { _ = conn.Close() }()
	var backend net.Conn
	for _, gm := range f.gms {
		var err error
		backend, err = net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(gm.channelPort), time.Second)
		if err == nil {
			break
		}
	}
	if backend == nil {
		// No GM took this connection. If none is ready either (a failover), stop listening, so
		// the next dials are refused at connect; one that is ready but busy (its accept queue
		// full in a reconnect storm) keeps the front open, as its endpoint stays in a Service.
		if !f.anyGMReady(context.Background()) {
			f.mu.Lock()
			if f.ln == ln {
				_ = ln.Close()
				f.ln = nil
			}
			f.mu.Unlock()
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		return
	}
	defer func() { _ = backend.Close() }()
	done := make(chan struct{}, 2)
	// Plain copies: io.Copy between two TCP connections splices through a pipe, two more open
	// files per direction, which a fleet of thousands of LCs in one process cannot afford.
	go func() { _, _ = io.Copy(onlyWriter{backend}, onlyReader{conn}); done <- struct{}{} }()
	go func() { _, _ = io.Copy(onlyWriter{conn}, onlyReader{backend}); done <- struct{}{} }()
	<-done
}

func (f *front) closeListener() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		_ = f.ln.Close()
		f.ln = nil
	}
}

// waitForAServingGM polls the GMs' /readyz, as endpoints follow readiness, and reports false
// when ctx ends first.
func (f *front) waitForAServingGM(ctx context.Context) bool {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		if f.anyGMReady(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
	}
}

func (f *front) anyGMReady(ctx context.Context) bool {
	client := &http.Client{Timeout: time.Second}
	for _, gm := range f.gms {
		if gmReady(ctx, client, gm) {
			return true
		}
	}
	return false
}

func gmReady(ctx context.Context, client *http.Client, gm *gmProcess) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+gm.healthAddr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// listenAgain binds addr once more; a moment after closing it the address may still be busy.
func listenAgain(ctx context.Context, addr string) (net.Listener, error) {
	var lastErr error
	for range 100 {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil, errors.Join(errors.New("binding for 2 s"), lastErr)
}
