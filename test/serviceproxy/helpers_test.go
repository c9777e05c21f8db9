package serviceproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer listens on address (port 0 picks one) and answers every connection with
// "<identity>\n" followed by everything the client sends, closing once the client half-closes.
// It returns the address it listens on and stops at the end of the test.
func echoServer(t *testing.T, address, identity string) string {
	t.Helper()
	listener, err := net.Listen("tcp", address)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = conn.Close() }()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, identity+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(conn, conn) // the client sees any failure as a wrong answer
			}()
		}
	}()
	t.Cleanup(func() {
		_ = listener.Close()
		wg.Wait()
	})
	return listener.Addr().String()
}

// request sends "ping" to address, half-closes, and returns what came back.
func request(address string) (string, error) {
	conn, err := net.DialTimeout("tcp", address, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, "ping"); err != nil {
		return "", err
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	if len(answer) == 0 {
		return "", errors.New("connection closed without an answer")
	}
	return string(answer), nil
}

// unusedAddress returns an address on ip that nothing listens on.
func unusedAddress(t *testing.T, ip string) string {
	t.Helper()
	listener, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(t, err)
	address := listener.Addr().String()
	require.NoError(t, listener.Close())
	return address
}
