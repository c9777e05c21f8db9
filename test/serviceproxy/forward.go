package serviceproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// portKey identifies one listener of a service: the service port's name and clusterIP:port.
type portKey struct {
	name    string
	address string
}

// portProxy is one listener and the endpoints its connections go to.
type portProxy struct {
	service     types.NamespacedName
	portName    string
	listener    net.Listener
	dialTimeout time.Duration
	conns       *connSet
	logger      klog.Logger

	mu        sync.Mutex
	endpoints []string
	// next is the round-robin position in endpoints.
	next int
	// reported is set once a connection found no usable endpoint, so that it is logged once per
	// outage (until endpoints change or a connection gets through), not once per connection.
	reported bool
}

// setEndpoints replaces the endpoints new connections go to and reports whether they changed.
func (pp *portProxy) setEndpoints(endpoints []string) bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if slices.Equal(pp.endpoints, endpoints) {
		return false
	}
	pp.endpoints = endpoints
	pp.next = 0
	pp.reported = false
	return true
}

// candidates returns the endpoints in the order one connection should try them: round-robin
// start, then the others as fallbacks.
func (pp *portProxy) candidates() []string {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	n := len(pp.endpoints)
	order := make([]string, 0, n)
	for i := range n {
		order = append(order, pp.endpoints[(pp.next+i)%n])
	}
	if n > 0 {
		pp.next = (pp.next + 1) % n
	}
	return order
}

// gotThrough re-arms the report: the next failure is a new outage.
func (pp *portProxy) gotThrough() {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.reported = false
}

// reportOnce reports whether a failure to find an endpoint should be logged now.
func (pp *portProxy) reportOnce() bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	first := !pp.reported
	pp.reported = true
	return first
}

// acceptLoop serves the listener until it is closed. wg counts it and every connection it starts.
func (pp *portProxy) acceptLoop(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		client, err := pp.listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of spinning.
			pp.logger.Error(err, "Accepting a connection failed")
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pp.serve(ctx, client)
		}()
	}
}

// serve forwards one client connection to the first endpoint that accepts a dial.
func (pp *portProxy) serve(ctx context.Context, client net.Conn) {
	if !pp.conns.add(client) {
		_ = client.Close() // the proxy is shutting down; nothing to report
		return
	}
	defer pp.conns.remove(client)
	defer func() { _ = client.Close() }() // teardown; errors carry no information here

	candidates := pp.candidates()
	if len(candidates) == 0 {
		if pp.reportOnce() {
			pp.logger.Info("No ready endpoint; closing connections until endpoints change", "client", client.RemoteAddr())
		}
		return
	}
	dialer := net.Dialer{Timeout: pp.dialTimeout}
	var backend net.Conn
	var dialErrs []error
	for _, endpoint := range candidates {
		conn, err := dialer.DialContext(ctx, "tcp", endpoint)
		if err == nil {
			backend = conn
			break
		}
		pp.logger.V(2).Info("Dialing endpoint failed; trying the next", "endpoint", endpoint, "err", err)
		dialErrs = append(dialErrs, err)
	}
	if backend == nil {
		if pp.reportOnce() {
			pp.logger.Error(errors.Join(dialErrs...), "No endpoint accepted a connection; closing this one (logged again after one gets through or endpoints change)",
				"endpoints", candidates, "client", client.RemoteAddr())
		}
		return
	}
	pp.gotThrough()
	if !pp.conns.add(backend) {
		_ = backend.Close() // the proxy is shutting down
		return
	}
	defer pp.conns.remove(backend)
	pp.logger.V(4).Info("Forwarding connection", "client", client.RemoteAddr(), "endpoint", backend.RemoteAddr())
	splice(client, backend)
}

// splice copies both directions until both ends have finished sending. An EOF in one direction
// is passed on as a half-close, so request/response protocols that close their sending side
// still get their answer; an error in either direction tears down both.
func splice(client, backend net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		copyHalf(backend, client)
	}()
	go func() {
		defer wg.Done()
		copyHalf(client, backend)
	}()
	wg.Wait()
	_ = backend.Close() // both directions are done; close errors carry no information
}

type closeWriter interface{ CloseWrite() error }

func copyHalf(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		// A reset or a closed socket: the connection is over in both directions; closing both
		// unblocks the other copy.
		_ = dst.Close()
		_ = src.Close()
		return
	}
	if cw, ok := dst.(closeWriter); ok {
		if err := cw.CloseWrite(); err == nil {
			return
		}
	}
	_ = dst.Close() // no half-close possible: closing is the only way to pass the EOF on
}

// connSet tracks open connections so that shutdown can close them.
type connSet struct {
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func newConnSet() *connSet { return &connSet{conns: map[net.Conn]struct{}{}} }

// add tracks conn; it returns false once closeAll has run, and the caller must close conn.
func (s *connSet) add(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	return true
}

func (s *connSet) remove(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for conn := range s.conns {
		_ = conn.Close() // shutdown; the copy goroutines see the error and finish
	}
}

// Forward splices every connection ln accepts to target, until ctx ends: one fixed path to one
// backend, such as the API server as an edge node's own network reaches it. When ctx ends, the
// listener and every forwarded connection are closed; the returned wait blocks until all of
// them are done.
func Forward(ctx context.Context, ln net.Listener, target string) (wait func()) {
	pp := &portProxy{
		portName: "forward", listener: ln, dialTimeout: defaultDialTimeout, conns: newConnSet(), endpoints: []string{target},
		logger: klog.FromContext(ctx).WithValues("listener", ln.Addr().String(), "target", target),
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go pp.acceptLoop(ctx, &wg)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		_ = ln.Close() // shutdown: Accept returns net.ErrClosed
		pp.conns.closeAll()
	}()
	return wg.Wait
}
