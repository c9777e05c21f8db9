package localsedna

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sedna-go/sedna/test/netns"
	"github.com/sedna-go/sedna/test/serviceproxy"
)

// nodeMonitorGracePeriod is how long kube-controller-manager waits for a node's heartbeat before
// it marks the node NotReady (Kubernetes' default), set when the edge nodes live in network
// namespaces: a partitioned edge node then goes NotReady, as a KubeEdge edge node cut off from
// CloudCore does, and its pods are marked not ready.
const nodeMonitorGracePeriod = "40s"

// serveNodeAPI forwards EdgeCloudIP:<port> to the API server until ctx ends, when the edge nodes
// live in network namespaces: the path their node agents reach the API server by, over their own
// link. It returns the wait for the forwarder's end (nil without namespaces).
func (s *Sedna) serveNodeAPI(ctx context.Context) (wait func(), err error) {
	if s.opts.EdgeNetwork == nil {
		return nil, nil
	}
	server, err := url.Parse(s.Cluster.Config.Host)
	if err != nil {
		return nil, fmt.Errorf("parsing the API server's address %q: %w", s.Cluster.Config.Host, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(EdgeCloudIP(s.opts.EdgeNetwork), "0"))
	if err != nil {
		return nil, fmt.Errorf("listening for the edge nodes' API traffic: %w", err)
	}
	s.nodeAPIAddr = ln.Addr().String()
	return serviceproxy.Forward(ctx, ln, server.Host), nil
}

// nodeClient is the Kubernetes client of the node agent of n: the admin client, except that an
// edge node in a network namespace dials from inside it, so that its heartbeats, node and pod
// statuses, pod watch and token requests stop while its link is down, as a real node's do (the
// Secrets and ConfigMaps its containers refer to are read with the admin client: the node's
// local cache of them, NodeOptions.ObjectClient).
func (s *Sedna) nodeClient(n Node) (kubernetes.Interface, error) {
	if n.NetNS == "" {
		return s.Kube, nil
	}
	cfg := rest.CopyConfig(s.Cluster.Config)
	dial, target := netns.Dialer(n.NetNS), s.nodeAPIAddr
	// The URL keeps the API server's own address, which its certificate names.
	cfg.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) { return dial(ctx, network, target) }
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the client of node %s: %w", n.Name, err)
	}
	return client, nil
}
