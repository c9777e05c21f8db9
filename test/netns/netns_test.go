package netns_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/test/netns"
)

// Subnets of these tests, apart from the campaign's (7) and local-up's defaults.
const (
	subnetLink    = 251
	subnetSignal  = 252
	subnetKilled  = 253
	subnetSlow    = 250
	helperEnv     = "NETNS_TEST_HELPER"
	helperReady   = "ready"
	helperTimeout = 2 * time.Minute
)

// TestMain lets the test binary act as a harness that sets up a network and is then interrupted
// or killed (see startHelper).
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper sets up a network with 2 nodes and waits. "signal": like the fault campaign, SIGINT or
// SIGTERM cancels its context, and the deferred Close removes the network. "killed": it waits to
// be killed with SIGKILL, leaving everything behind.
func helper(mode string) int {
	subnet := subnetSignal
	if mode == "killed" {
		subnet = subnetKilled
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
	}()
	n, err := netns.Setup(ctx, netns.Options{Subnet: subnet, Nodes: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := n.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	fmt.Println(helperReady)
	<-ctx.Done()
	return 0
}

func requireRoot(t *testing.T) {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// TestLinkDownCutsTheNode: a node's processes reach the cloud range and the host reaches the
// node, until its link goes down; after Up both work again; Close leaves nothing.
func TestLinkDownCutsTheNode(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	n, err := netns.Setup(ctx, netns.Options{Subnet: subnetLink, Nodes: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	left, err := netns.Leftovers(subnetLink)
	require.NoError(t, err)
	require.Len(t, left, 3+2+1, "2 namespaces and the cloud pair's, 2 host veth ends, the cloud link: %v", left)

	// A server on the node, bound to the node's address inside its namespace.
	node := n.Links[0]
	nodeLn, err := netns.Listen(node.Path(), "tcp", node.NodeIP+":0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = nodeLn.Close() })
	go func() {
		_ = http.Serve(nodeLn, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "node") }))
	}()
	// A cloud server on the host, on the cloud range.
	cloudLn, err := net.Listen("tcp", n.CloudAddress(10)+":0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = cloudLn.Close() })
	go func() {
		_ = http.Serve(cloudLn, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "cloud") }))
	}()

	fromHost := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	fromNode := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: netns.Dialer(node.Path())}}
	fromOther := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: netns.Dialer(n.Links[1].Path())}}
	get := func(c *http.Client, url string) (string, error) {
		resp, err := c.Get(url) //nolint:noctx // bounded by the client's timeout
		if err != nil {
			return "", err
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	nodeURL, cloudURL := "http://"+nodeLn.Addr().String(), "http://"+cloudLn.Addr().String()

	got, err := get(fromHost, nodeURL)
	require.NoError(t, err)
	require.Equal(t, "node", got)
	got, err = get(fromNode, cloudURL)
	require.NoError(t, err)
	require.Equal(t, "cloud", got)
	got, err = get(fromNode, nodeURL)
	require.NoError(t, err)
	require.Equal(t, "node", got, "a node reaches its own address")
	// Inside a namespace, the host's loopback is not reachable.
	hostLoop, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = hostLoop.Close() })
	_, err = get(fromNode, "http://"+hostLoop.Addr().String())
	require.Error(t, err, "127.0.0.1 inside the namespace is its own")

	require.NoError(t, n.Down(ctx, 1))
	_, err = get(fromHost, nodeURL)
	require.Error(t, err, "host to a partitioned node")
	// Not out of the machine: the default route may lead to something that answers.
	route, err := exec.Command("ip", "route", "get", node.NodeIP).CombinedOutput()
	require.NoError(t, err, string(route))
	require.Contains(t, string(route), "dev "+n.CloudIf+" ", "a cut-off node's address stays inside the network")
	_, err = get(fromNode, cloudURL)
	require.Error(t, err, "a partitioned node to the cloud")
	got, err = get(fromNode, nodeURL)
	require.NoError(t, err, "the node's own processes still reach each other")
	require.Equal(t, "node", got)
	got, err = get(fromOther, cloudURL)
	require.NoError(t, err, "the other node is not partitioned")
	require.Equal(t, "cloud", got)

	require.NoError(t, n.Up(ctx, 1))
	got, err = get(fromNode, cloudURL)
	require.NoError(t, err)
	require.Equal(t, "cloud", got)
	got, err = get(fromHost, nodeURL)
	require.NoError(t, err)
	require.Equal(t, "node", got)

	require.NoError(t, n.Close())
	left, err = netns.Leftovers(subnetLink)
	require.NoError(t, err)
	require.Empty(t, left)
	_, err = net.Listen("tcp", n.CloudAddress(10)+":0")
	require.Error(t, err, "the cloud range is no longer local after Close")
}

// startHelper runs this test binary as a harness in mode and waits until its network is up.
func startHelper(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		s.Scan()
		line <- s.Text()
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		require.Equal(t, helperReady, l)
	case <-time.After(helperTimeout):
		t.Fatal("the helper did not set its network up")
	}
	return cmd
}

// TestInterruptedHarnessRemovesItsNetwork: SIGTERM and SIGINT to a harness that set up a network
// leave no namespace and no link behind.
func TestInterruptedHarnessRemovesItsNetwork(t *testing.T) {
	requireRoot(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := startHelper(t, "signal")
		left, err := netns.Leftovers(subnetSignal)
		require.NoError(t, err)
		require.NotEmpty(t, left, "the helper's network is up")
		require.NoError(t, cmd.Process.Signal(sig))
		require.NoError(t, cmd.Wait(), "the helper exits cleanly on %s", sig)
		left, err = netns.Leftovers(subnetSignal)
		require.NoError(t, err)
		require.Empty(t, left, "after %s", sig)
	}
}

// TestSweepRemovesAKilledRunsNetwork: a harness killed with SIGKILL cannot clean up; the next
// Setup (through Sweep) removes what it left, and a network with another subnet is untouched.
func TestSweepRemovesAKilledRunsNetwork(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	other, err := netns.Setup(ctx, netns.Options{Subnet: subnetLink, Nodes: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })

	cmd := startHelper(t, "killed")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait() // killed
	left, err := netns.Leftovers(subnetKilled)
	require.NoError(t, err)
	require.NotEmpty(t, left, "a killed harness leaves its network")

	n, err := netns.Setup(ctx, netns.Options{Subnet: subnetKilled, Nodes: 1})
	require.NoError(t, err, "Setup sweeps the leftovers of the same subnet first")
	left, err = netns.Leftovers(subnetKilled)
	require.NoError(t, err)
	require.Len(t, left, 4, "only the new network's: 1 namespace and the cloud pair's, its host end, the cloud link: %v", left)
	require.NoError(t, n.Close())

	require.NoError(t, netns.Sweep(ctx, subnetKilled))
	left, err = netns.Leftovers(subnetKilled)
	require.NoError(t, err)
	require.Empty(t, left)
	left, err = netns.Leftovers(subnetLink)
	require.NoError(t, err)
	require.NotEmpty(t, left, "another subnet's network is not swept")
}

// TestSlowLimitsWhatTheLinkCarriesTowardsTheNode: Slow puts a token bucket filter on the host
// end that throttles a transfer to the node (its overlimit counter moves) and the transfer still
// completes; Unslow removes it, twice without error.
func TestSlowLimitsWhatTheLinkCarriesTowardsTheNode(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	n, err := netns.Setup(ctx, netns.Options{Subnet: subnetSlow, Nodes: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	node := n.Links[0]
	ln, err := netns.Listen(node.Path(), "tcp", node.NodeIP+":0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		got, _ := io.Copy(io.Discard, c)
		received <- got
	}()

	require.NoError(t, n.Slow(ctx, 1, "256kbit"))
	show := func() string {
		out, err := exec.Command("tc", "-s", "qdisc", "show", "dev", node.HostIf).CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	require.Contains(t, show(), "tbf")
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_, err = c.Write(make([]byte, 64<<10)) // 2 s at 256 kbit/s
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.Equal(t, int64(64<<10), <-received, "a slow link still delivers")
	m := regexp.MustCompile(`overlimits (\d+)`).FindStringSubmatch(show())
	require.NotNil(t, m, show())
	require.NotEqual(t, "0", m[1], "the filter held packets back: %s", show())

	require.NoError(t, n.Unslow(ctx, 1))
	require.NotContains(t, show(), "tbf")
	require.NoError(t, n.Unslow(ctx, 1), "a link without a limit")
}
