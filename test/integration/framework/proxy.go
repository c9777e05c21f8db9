package framework

import (
	"errors"
	"io"
	"net"
	"sync"
)

// CutProxy forwards TCP connections to a target and can cut the link: Cut closes every open
// connection and refuses new ones until Restore. Tests use it to take an LC off the network.
type CutProxy struct {
	listener net.Listener
	target   string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// NewCutProxy listens on a loopback port and forwards to target.
func NewCutProxy(target string) (*CutProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &CutProxy{listener: l, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *CutProxy) Addr() string { return p.listener.Addr().String() }

// Cut drops every connection and refuses new ones.
func (p *CutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close() // the point is to break them
	}
}

// Restore accepts connections again.
func (p *CutProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Close stops the proxy.
func (p *CutProxy) Close() error {
	p.Cut()
	return p.listener.Close()
}

func (p *CutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *CutProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *CutProxy) serve() {
	for {
		client, err := p.listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !p.track(client) {
			_ = client.Close()
			continue
		}
		upstream, err := net.Dial("tcp", p.target)
		if err != nil || !p.track(upstream) {
			_ = client.Close()
			if upstream != nil {
				_ = upstream.Close()
			}
			p.untrack(client)
			continue
		}
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src) // ends when either side closes
			_ = dst.Close()
			_ = src.Close()
			p.untrack(dst)
			p.untrack(src)
		}
		go pipe(client, upstream)
		go pipe(upstream, client)
	}
}
