// Package serviceproxy is the test and development harness's stand-in for kube-proxy: a small
// userspace proxy that makes ClusterIP Services of a localcluster reachable on this machine. It is
// never shipped as a product component.
//
// The local cluster's service CIDR (a 127.100.X.0/24) lies inside the loopback range, so every
// cluster IP can be bound on Linux without touching the machine's network. For every Service with
// a cluster IP (type ClusterIP, NodePort or LoadBalancer; not headless, not ExternalName) and every
// TCP port, the proxy listens on clusterIP:port and forwards each accepted connection to a ready
// endpoint, round-robin, trying the next endpoint when a dial fails. Listeners follow the Services
// (ports added, changed or removed, Services deleted); endpoint changes apply to new connections,
// while connections already established keep running, as conntrack'd flows do under kube-proxy.
//
// Endpoints come from two places, merged and de-duplicated:
//
//   - discovery.k8s.io/v1 EndpointSlices labelled kubernetes.io/service-name, endpoints whose
//     conditions.ready is not false, the slice port named like the service port;
//   - for Services with a selector, the selected Pods directly (Ready, running, with a pod IP, the
//     target port resolved by number or container port name). This is needed because the harness
//     gives pods loopback addresses (127.0.1.N, one per process node), and the apiserver rejects
//     loopback addresses in EndpointSlices, so the endpointslice controller can never publish them.
//
// Hosts renders hosts-file lines for all cluster-IP Services; the process nodes bind-mount them
// into each pod's /etc/hosts so that "gm.sedna:9000"-style addresses resolve without cluster DNS.
//
// Out of scope: UDP and SCTP ports (ignored), NodePorts, external and load-balancer IPs, session
// affinity, topology hints, traffic policies and terminating-endpoint fallback.
//
// The package owns only its listeners and the connections it accepts or dials; it reads Services,
// EndpointSlices and Pods and never writes to the API server.
package serviceproxy
