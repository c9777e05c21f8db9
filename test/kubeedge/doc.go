// Package kubeedge runs KubeEdge's cloudcore and edgecore (v1.23.1, built by
// hack/install-kubeedge.sh from the module proxy) against a test/localcluster control plane, so
// that Sedna's LC DaemonSet runs on a real KubeEdge edge node with real containers. It is a test
// harness, never shipped.
//
// What it owns and removes: everything under each component's Dir (configuration, certificates,
// edgecore's database, edged's root directory, pod logs and static-pod directory), the processes it
// starts (own process group, killed by the kernel if the test dies), every mount under an
// edgecore's root directory, and the Kubernetes objects it creates (namespace kubeedge, KubeEdge's
// CRDs, the edge Node). Nothing is written under /etc/kubeedge, /var/lib/kubeedge or /var/lib/edged:
// every path KubeEdge defaults there is set into Dir.
//
// iptables: cloudcore's iptables manager (which adds DNAT rules for the stream tunnel) and
// edged's kubelet chains (makeIPTablesUtilChains) are switched off, so neither adds a rule. The
// end-to-end test runs the edge node's containerd and the cloud node with test/realnode and
// asserts with its host snapshot that the machine is as before.
package kubeedge
