// Package localsedna runs Sedna on one machine without containers or KubeEdge: a real control
// plane (test/localcluster), one cloud node and N edge nodes whose pods run as local processes
// (test/processnode), a userspace service proxy for cluster IPs (test/serviceproxy), sedna-gm as
// a process with the RBAC, config and TLS of build/gm, and sedna-lc as the DaemonSet of build/lc,
// run by the edge nodes with a projected token bound to its pod, as a kubelet would, and the
// lifelong learning knowledge base as build/kb, unmodified, on the cloud node: the harness creates
// what an administrator provides first, the token Secret (random tokens), a directory on the cloud
// node and a local PersistentVolume of it for its claim, which the process node mounts as a kubelet
// does, given to build/kb's fsGroup. Workers and LCs reach it as kb.sedna:9020 through the service proxy, GM's configured
// knowledgeBaseServer.server and the LC's KB_SERVER unchanged.
//
// It is the harness behind hack/local-up.sh and the e2e tests; it is never shipped.
//
// What differs from build/ and why: GM is not a pod (its in-cluster client needs a token at a
// fixed path, which a process cannot be given), so LCs dial GM's process directly (GM_ADDRESS is
// set to it). Nothing else of build/lc/daemonset.yaml is changed: the LC gets exactly the
// manifest's volumes (the node's /data and /var/lib/sedna read-write, its token and GM's CA
// read-only), enforced by the process node in the LC's mount namespace, so a write the manifest
// does not allow fails here as on a real node; its root filesystem is read-only as the manifest
// says; and it binds its worker API to NODE_IP, its node's own loopback address, which lets the
// nodes share this machine's ports. The host of a node is the node's directory (its hostPath
// volumes live under <node root>/host). What the process node cannot enforce (a process is not an
// image: the machine's binaries, /tmp and every top-level directory the pod mounts nothing in stay
// reachable) is listed in test/processnode's documentation.
//
// Edge nodes in network namespaces (Options.EdgeNetwork, root only; off by default): each edge
// node's LC and workers run in a namespace of its own, created by the caller with test/netns, and
// the node's address is the namespace's end of its veth pair (the LC's worker API and the node's
// kubelet API listen there). Inside a namespace 127.0.0.1 is the namespace's own, so what the edge
// dials on the cloud side is served on the cloud range the namespaces reach through their links:
// GM's channel on EdgeCloudIP (GM's certificate names it), and the cluster's Services, whose
// service CIDR becomes the lower half of that range (the service proxy binds the cluster IPs
// there). The node agent (its Lease, node and pod statuses, token requests) runs in the harness
// but reaches the API server from inside its namespace, through a forwarder on EdgeCloudIP, and
// kube-controller-manager waits Kubernetes' default 40 s for a heartbeat. Taking a node's link
// down (netns.Network.Down) then cuts the node off for real: its LC and workers lose GM and the
// Services, and after 40–50 s the node goes NotReady (its Ready condition Unknown) and its pods
// not ready, as a KubeEdge edge node cut off from CloudCore does; when the link is back, the
// node renews its Lease, reports Ready within 10 s and puts its pods' statuses right. The
// Secrets and ConfigMaps its containers refer to are still read while it is cut off, as a node's
// local cache of them would answer. The forwarder is reachable from every edge namespace, so an
// edge pod could reach the API server through it (with its own credentials, and knowing the
// port), which KubeEdge edge pods usually cannot. Options.EdgeStoreSize puts every edge node's
// /var/lib/sedna on a tmpfs of its own, so a test can fill the LC's store (FillEdgeStore,
// FreeEdgeStore).
package localsedna
