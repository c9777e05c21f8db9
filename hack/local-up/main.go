// Command local-up runs Sedna on this machine (test/localsedna) until interrupted: a real control
// plane, a cloud node and edge nodes whose pods run as processes, sedna-gm and one sedna-lc per
// edge node. hack/local-up.sh builds what it needs and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
	"github.com/sedna-go/sedna/test/netns"
)

func main() {
	klog.InitFlags(nil)
	dir := flag.String("dir", filepath.Join(localcluster.RepoRoot(), "_output", "local"), "working directory (kubeconfig, node roots, logs)")
	edgeNodes := flag.Int("edge-nodes", 2, "number of edge nodes")
	demo := flag.Bool("demo", false, "run the joint inference MNIST demo once Sedna is up")
	exitAfterDemo := flag.Bool("exit-after-demo", false, "stop after the demo instead of waiting for Ctrl-C")
	netnsSubnet := flag.Int("netns-subnet", 0, "root only: put every edge node in a network namespace of its own "+
		"(test/netns: 10.213.<subnet>.0/24 for the nodes' links, 10.214.<subnet>.0/24 for the cloud), removed at exit; 0: no namespaces")
	flag.Parse()
	if err := run(*dir, *edgeNodes, *demo, *exitAfterDemo, *netnsSubnet); err != nil {
		fmt.Fprintln(os.Stderr, "local-up:", err)
		os.Exit(1)
	}
}

func run(dir string, edgeNodes int, demo, exitAfterDemo bool, netnsSubnet int) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	logger := klog.Background()
	ctx = klog.NewContext(ctx, logger)
	start := time.Now()
	opts := localsedna.Options{Dir: dir, EdgeNodes: edgeNodes, DatasetCheckPeriod: 5 * time.Second}
	if netnsSubnet != 0 {
		network, err := netns.Setup(ctx, netns.Options{Subnet: netnsSubnet, Nodes: edgeNodes})
		if err != nil {
			return err
		}
		defer func() {
			if closeErr := network.Close(); closeErr != nil && err == nil {
				err = closeErr
			}
		}()
		opts.EdgeNetwork = network
	}
	sedna, err := localsedna.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("Stopping local Sedna ...")
		if stopErr := sedna.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
		fmt.Println("Stopped; nothing started by local-up is running. Logs are kept in", dir)
	}()
	fmt.Printf(`
Local Sedna is up (%s): a cloud node and %d edge nodes, sedna-gm, sedna-lc on every edge node,
and the knowledge base (build/kb, kb.sedna:9020) on the cloud node. Its tokens are in Secret
sedna/sedna-kb-token; copy it into a namespace before running lifelong learning jobs there
(examples/lifelong_learning/mnist/README.md).

  export KUBECONFIG=%s
  kubectl get nodes,pods -A -o wide
  kubectl get sedna -A

Nodes' host file systems are under %s/nodes/<node>/host (hostPath /data is <node>/host/data).
Container logs: %s/nodes/<node>/logs; GM's log: %s.
Examples: examples/joint_inference/mnist (its README says how to run it here).

Press Ctrl-C to stop everything.
`, time.Since(start).Round(time.Second), edgeNodes, sedna.Kubeconfig, dir, dir, sedna.GMLog())
	if demo {
		if err := runDemo(ctx, sedna); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if exitAfterDemo {
			return nil
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case <-nodeFailure(sedna):
		return sedna.Err()
	}
}

// nodeFailure is closed if a node stops on its own.
func nodeFailure(s *localsedna.Sedna) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for s.Err() == nil {
			time.Sleep(time.Second)
		}
		close(ch)
	}()
	return ch
}
