package scale

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeGM is a GM as the front sees one: a channel port that echoes, and a /readyz.
type fakeGM struct {
	gm      *gmProcess
	ready   atomic.Bool
	channel net.Listener
}

func newFakeGM(t *testing.T) *fakeGM {
	f := &fakeGM{}
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && f.ready.Load() {
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(health.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.gm = &gmProcess{channelPort: ln.Addr().(*net.TCPAddr).Port, healthAddr: health.Listener.Addr().String()}
	f.serve(t, ln)
	return f
}

// serve echoes on ln; the GM is ready while it serves.
func (f *fakeGM) serve(t *testing.T, ln net.Listener) {
	f.channel = ln
	f.ready.Store(true)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = conn.Close() }()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
}

// die stops the GM as a SIGKILL does: its port and its readiness are gone.
func (f *fakeGM) die() {
	f.ready.Store(false)
	_ = f.channel.Close()
}

// restart serves the channel again on the same port.
func (f *fakeGM) restart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.gm.channelPort))
	require.NoError(t, err)
	f.serve(t, ln)
}

// echoes reports whether a connection through addr carries a message there and back.
func echoes(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return errors.New("echo garbled: " + string(buf))
	}
	return nil
}

func TestTheFrontRefusesAtConnectWhileNoGMIsReadyAndServesAgainAfter(t *testing.T) {
	gm := newFakeGM(t)
	url := startFront(t, []*gmProcess{gm.gm})
	addr := url[len("wss://") : len(url)-1]
	require.NoError(t, echoes(addr), "a serving GM is reached through the front")

	gm.die()
	// The first dial may still be accepted and reset; then the front stops listening, and a
	// dial is refused at connect, before any byte of a TLS handshake could be sent.
	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	}, 10*time.Second, 20*time.Millisecond, "with no GM ready the front refuses at connect")

	gm.restart(t)
	require.Eventually(t, func() bool { return echoes(addr) == nil }, 10*time.Second, 20*time.Millisecond,
		"the front listens again on the same address once a GM is ready")
}

func TestTheFrontStaysOpenWhileAReadyGMRefusesAConnection(t *testing.T) {
	gm := newFakeGM(t)
	url := startFront(t, []*gmProcess{gm.gm})
	addr := url[len("wss://") : len(url)-1]
	require.NoError(t, echoes(addr))

	// Ready, but its port refuses (as a full accept queue may): the front still accepts each
	// connection (and resets it, having no GM to give it to); it never stops listening.
	_ = gm.channel.Close()
	require.Error(t, echoes(addr))
	for range 10 {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
		}
		require.False(t, errors.Is(err, syscall.ECONNREFUSED), "a ready GM keeps the front listening: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
}
