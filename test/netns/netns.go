package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Dir is where `ip netns add` puts the namespaces' files.
const Dir = "/var/run/netns"

// namePrefix begins every namespace and link this package creates; the subnet follows, so that
// two networks with different subnets (a campaign beside an e2e run) never sweep each other.
const namePrefix = "snx"

// MaxNodes is how many /30 links fit in a subnet's 10.213.<subnet>.0/24.
const MaxNodes = 62

// Options configures Setup.
type Options struct {
	// Subnet (1..254) is the third byte of the two /24s the network owns: 10.213.<Subnet>.0/24
	// for the nodes' links, 10.214.<Subnet>.0/24 for the cloud.
	Subnet int
	// Nodes is the number of edge nodes, each in a namespace of its own (1..MaxNodes).
	Nodes int
}

// Link is one edge node's namespace and its veth pair to the host.
type Link struct {
	// NetNS is the namespace's name (`ip netns`); Path is its file.
	NetNS string
	// HostIf is the host end of the veth pair, the one Down and Up act on; NSIf is in NetNS.
	HostIf, NSIf string
	// HostIP is HostIf's address, the namespace's default gateway; NodeIP is NSIf's, the node's
	// own address.
	HostIP, NodeIP string
}

// Path is the namespace's file, what setns and nsenter --net take.
func (l Link) Path() string { return filepath.Join(Dir, l.NetNS) }

// Network is the edge nodes' namespaces and the cloud range, created by Setup and removed by
// Close.
type Network struct {
	opts Options
	// Links are the edge nodes' links, edge node i at Links[i-1].
	Links []Link
	// CloudIf is the host link that makes the cloud range local: every address of CloudCIDR can
	// be bound on the host and is reached from every namespace through its gateway.
	CloudIf   string
	CloudCIDR string
}

// Prefix is the name prefix of every namespace and link of the network with this subnet.
func Prefix(subnet int) string { return fmt.Sprintf("%s%d-", namePrefix, subnet) }

// CloudAddress is the n-th address of the cloud range (1..254).
func (n *Network) CloudAddress(i int) string { return fmt.Sprintf("10.214.%d.%d", n.opts.Subnet, i) }

// Available says why this machine cannot run edge nodes in namespaces, nil if it can: it needs
// root and the ip command.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("network namespaces need the ip command: %w", err)
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return fmt.Errorf("processes in network namespaces are started with nsenter: %w", err)
	}
	return nil
}

// Setup removes what a killed run with the same subnet left (Sweep), then creates one namespace
// per edge node with a veth pair to the host (10.213.<subnet>.4i+1/30 on the host end,
// .4i+2/30 in the namespace, which routes everything through the host end), and makes
// 10.214.<subnet>.0/24 local on the host (a local route on a veth pair of its own) for
// addresses the cloud serves the edge on. On error, what was created is removed.
func Setup(ctx context.Context, opts Options) (*Network, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.Subnet < 1 || opts.Subnet > 254 {
		return nil, fmt.Errorf("netns: subnet %d is not in 1..254", opts.Subnet)
	}
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return nil, fmt.Errorf("netns: %d nodes is not in 1..%d", opts.Nodes, MaxNodes)
	}
	if err := Sweep(ctx, opts.Subnet); err != nil {
		return nil, err
	}
	prefix := Prefix(opts.Subnet)
	for _, cidr := range []string{fmt.Sprintf("10.213.%d.0/24", opts.Subnet), fmt.Sprintf("10.214.%d.0/24", opts.Subnet)} {
		if err := rangeFree(cidr); err != nil {
			return nil, err
		}
	}
	n := &Network{opts: opts, CloudIf: prefix + "cl", CloudCIDR: fmt.Sprintf("10.214.%d.0/24", opts.Subnet)}
	void := prefix + "void"
	steps := [][]string{
		// The cloud pair's other end lies in a namespace with no address: what is routed into
		// it goes nowhere.
		{"netns", "add", void},
		{"link", "add", n.CloudIf, "type", "veth", "peer", "name", prefix + "cp", "netns", void},
		{"link", "set", n.CloudIf, "up"},
		{"-n", void, "link", "set", prefix + "cp", "up"},
		{"route", "add", "local", n.CloudCIDR, "dev", n.CloudIf, "table", "local"},
		// While a node's link is down its /30 route is gone; without this route the node's
		// address would be routed out of the machine's default route, where anything may
		// answer. With it, packets for a cut-off node are lost, as on a real partition.
		{"route", "add", fmt.Sprintf("10.213.%d.0/24", opts.Subnet), "dev", n.CloudIf},
	}
	for i := 1; i <= opts.Nodes; i++ {
		l := Link{NetNS: fmt.Sprintf("%se%d", prefix, i), HostIf: fmt.Sprintf("%se%dh", prefix, i), NSIf: fmt.Sprintf("%se%dn", prefix, i),
			HostIP: fmt.Sprintf("10.213.%d.%d", opts.Subnet, 4*i+1), NodeIP: fmt.Sprintf("10.213.%d.%d", opts.Subnet, 4*i+2)}
		n.Links = append(n.Links, l)
		steps = append(steps,
			[]string{"netns", "add", l.NetNS},
			[]string{"link", "add", l.HostIf, "type", "veth", "peer", "name", l.NSIf, "netns", l.NetNS},
			[]string{"addr", "add", l.HostIP + "/30", "dev", l.HostIf},
			[]string{"link", "set", l.HostIf, "up"},
			[]string{"-n", l.NetNS, "addr", "add", l.NodeIP + "/30", "dev", l.NSIf},
			[]string{"-n", l.NetNS, "link", "set", l.NSIf, "up"},
			[]string{"-n", l.NetNS, "link", "set", "lo", "up"},
			[]string{"-n", l.NetNS, "route", "add", "default", "via", l.HostIP},
		)
	}
	for _, step := range steps {
		if err := ip(ctx, step...); err != nil {
			return nil, errors.Join(err, n.Close())
		}
	}
	return n, nil
}

// rangeFree fails if an address of this machine lies in cidr: the range is someone else's.
func rangeFree(cidr string) error {
	_, block, err := net.ParseCIDR(cidr)
	if err != nil {
		return err
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("listing this machine's addresses: %w", err)
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && block.Contains(ipnet.IP) {
			return fmt.Errorf("netns: %s is in use on this machine (%s); choose another subnet", cidr, ipnet)
		}
	}
	return nil
}

// Down takes edge node i's link down at the host end: the node is cut off from everything off
// the node (packets are dropped, connections time out) until Up.
func (n *Network) Down(ctx context.Context, i int) error {
	return ip(ctx, "link", "set", n.Links[i-1].HostIf, "down")
}

// Up brings edge node i's link back.
func (n *Network) Up(ctx context.Context, i int) error {
	return ip(ctx, "link", "set", n.Links[i-1].HostIf, "up")
}

// Slow limits what edge node i's link carries towards the node to rate (a tc rate such as
// "32kbit", a token bucket filter on the host end), as a slow edge link, until Unslow.
func (n *Network) Slow(ctx context.Context, i int, rate string) error {
	return tc(ctx, "qdisc", "replace", "dev", n.Links[i-1].HostIf, "root", "tbf", "rate", rate, "burst", "1600", "latency", "10s")
}

// Unslow removes Slow's limit (what it still queued is dropped); a link without one is not an
// error.
func (n *Network) Unslow(ctx context.Context, i int) error {
	err := tc(ctx, "qdisc", "del", "dev", n.Links[i-1].HostIf, "root")
	if err != nil && (strings.Contains(err.Error(), "No such file or directory") || strings.Contains(err.Error(), "Cannot delete qdisc with handle of zero")) {
		return nil
	}
	return err
}

// Close removes every namespace and link of the network (their addresses and routes go with
// them). Safe to call more than once.
func (n *Network) Close() error {
	return Sweep(context.Background(), n.opts.Subnet)
}

// Sweep removes every namespace and link named with Prefix(subnet): what Setup created, also
// after the process that created it was killed.
func Sweep(ctx context.Context, subnet int) error {
	prefix := Prefix(subnet)
	var errs []error
	entries, err := os.ReadDir(Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			// Deleting a namespace deletes the veth ends in it, and so their peers on the host.
			if err := ip(ctx, "netns", "del", e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	links, err := Leftovers(subnet)
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range links {
		if strings.HasPrefix(l, "netns ") {
			continue
		}
		if err := ip(ctx, "link", "del", l); err != nil && linkExists(l) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists the namespaces ("netns <name>") and host links of the network with this
// subnet that exist now: empty after Close or Sweep.
func Leftovers(subnet int) ([]string, error) {
	prefix := Prefix(subnet)
	var out []string
	entries, err := os.ReadDir(Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, "netns "+e.Name())
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, iface := range ifaces {
		if strings.HasPrefix(iface.Name, prefix) {
			out = append(out, iface.Name)
		}
	}
	return out, nil
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func tc(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "tc", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("tc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Command returns argv run in the namespace at path (through nsenter, which execs argv in
// place: the process keeps nsenter's PID and its parent-death signal).
func Command(path string, argv []string) ([]string, error) {
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, err
	}
	return append([]string{nsenter, "--net=" + path, "--"}, argv...), nil
}

// in runs f on an OS thread that has entered the namespace at path; sockets f creates belong to
// that namespace for their whole life. The thread goes back to its namespace afterwards, or is
// thrown away if it cannot.
func in(path string, f func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer func() { _ = self.Close() }() // read-only
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer func() { _ = target.Close() }() // read-only
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering %s: %w", path, err)
			return
		}
		f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and ends with this goroutine.
			errc <- nil
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	return <-errc
}

// Listen listens on address inside the namespace at path.
func Listen(path, network, address string) (net.Listener, error) {
	var l net.Listener
	var lerr error
	if err := in(path, func() { l, lerr = net.Listen(network, address) }); err != nil {
		return nil, err
	}
	return l, lerr
}

// Dialer returns a DialContext that connects from inside the namespace at path, as a client on
// that node would: when the node's link is down, it reaches only the node.
func Dialer(path string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		var c net.Conn
		var derr error
		if err := in(path, func() {
			var d net.Dialer
			c, derr = d.DialContext(ctx, network, address)
		}); err != nil {
			return nil, err
		}
		return c, derr
	}
}
