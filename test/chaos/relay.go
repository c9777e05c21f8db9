package chaos

import (
	"context"
	"net"
	"sync"
)

// PartitionMode is how a cut link behaves.
type PartitionMode string

const (
	// Reset closes every connection and refuses new ones at once, as a peer whose host is
	// unreachable with an ICMP error or RST would.
	Reset PartitionMode = "reset"
	// Blackhole keeps connections open but forwards nothing and accepts new connections without
	// answering, as a link that silently drops packets: only the endpoints' keepalives notice.
	Blackhole PartitionMode = "blackhole"
)

// Relay is the cloud end of the edge's link to GM: every LC dials it (localsedna's LCGMAddress)
// and it forwards each connection to the GM that is ready at the time (the primary or, after a
// failover, the standby), as GM's Service would. Partition cuts the link; Heal restores it.
// This is the fallback for real network namespaces (see docs/reliability.md): the cut is between
// the edge and the cloud only; workers still reach their LC.
type Relay struct {
	ln      net.Listener
	backend func(ctx context.Context) (string, error)

	mu    sync.Mutex
	cut   PartitionMode // "" when healed
	conns map[net.Conn]struct{}
	// healed is closed on Heal; blackholed connections wait on it.
	healed chan struct{}
	wg     sync.WaitGroup
}

// NewRelay listens on a free loopback port; backend returns the address of the GM to forward
// a new connection to.
func NewRelay(backend func(ctx context.Context) (string, error)) (*Relay, error) {
	return NewRelayOn("127.0.0.1", backend)
}

// NewRelayOn is NewRelay listening on a free port of host.
func NewRelayOn(host string, backend func(ctx context.Context) (string, error)) (*Relay, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, backend: backend, conns: map[net.Conn]struct{}{}, healed: make(chan struct{})}
	close(r.healed)
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

// Addr is the address the LCs dial.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Partition cuts the link in mode until Heal.
func (r *Relay) Partition(mode PartitionMode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut != "" {
		return
	}
	r.cut = mode
	r.healed = make(chan struct{})
	if mode == Reset {
		for c := range r.conns {
			_ = c.Close() // cutting is the point
		}
	}
}

// Heal restores the link. Connections blackholed during the cut are closed: the packets they
// lost are gone, and a TCP stream cannot skip them.
func (r *Relay) Heal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut == "" {
		return
	}
	if r.cut == Blackhole {
		for c := range r.conns {
			_ = c.Close()
		}
	}
	r.cut = ""
	close(r.healed)
}

// Close stops listening, closes every connection and waits for the relay's goroutines.
func (r *Relay) Close() {
	_ = r.ln.Close() // ends serve
	r.mu.Lock()
	for c := range r.conns {
		_ = c.Close()
	}
	if r.cut != "" {
		r.cut = ""
		close(r.healed)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut == Reset {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	_ = c.Close() // done with it
}

func (r *Relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.handle(c)
		}()
	}
}

func (r *Relay) handle(edge net.Conn) {
	if !r.track(edge) {
		_ = edge.Close() // refused during a reset partition
		return
	}
	defer r.untrack(edge)
	r.mu.Lock()
	healed, cut := r.healed, r.cut
	r.mu.Unlock()
	if cut == Blackhole {
		// Accepted, never answered; the connection dies at Heal.
		<-healed
		return
	}
	addr, err := r.backend(context.Background())
	if err != nil {
		return
	}
	cloud, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	if !r.track(cloud) {
		_ = cloud.Close()
		return
	}
	defer r.untrack(cloud)
	done := make(chan struct{}, 2)
	go func() { r.pipe(cloud, edge); done <- struct{}{} }()
	go func() { r.pipe(edge, cloud); done <- struct{}{} }()
	<-done
	_ = edge.Close()  // one direction ended: end both
	_ = cloud.Close() // likewise
	<-done
}

// pipe copies src to dst; during a blackhole it holds what it read instead of writing it.
func (r *Relay) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			cut, healed := r.cut, r.healed
			r.mu.Unlock()
			if cut == Blackhole {
				<-healed // Heal closes this connection: the bytes are dropped
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: done either way
		}
	}
}
