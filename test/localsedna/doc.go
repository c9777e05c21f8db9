// Package localsedna runs Sedna on one machine without containers or KubeEdge: a real control
// plane (test/localcluster), one cloud node and N edge nodes whose pods run as local processes
// (test/processnode), a userspace service proxy for cluster IPs (test/serviceproxy), sedna-gm as
// a process with the RBAC, config and TLS of build/gm, and sedna-lc as the DaemonSet of build/lc,
// run by the edge nodes with a projected token bound to its pod, as a kubelet would.
//
// It is the harness behind hack/local-up.sh and the e2e tests; it is never shipped.
//
// What differs from build/ and why: GM is not a pod (its in-cluster client needs a token at a
// fixed path, which a process cannot be given), so LCs dial GM's process directly; LCs bind the
// worker API to their node's loopback address, since every node shares this machine's ports; and
// the host's / the LC sees is the node's directory.
package localsedna
