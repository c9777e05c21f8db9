// Package netns puts the edge nodes of a local Sedna in network namespaces of their own, so that
// cutting an edge node off the cloud is a real link going down rather than a proxy refusing to
// forward. The test harness creates, for every edge node, a namespace (`ip netns add`) and a
// veth pair to the host: 10.213.<subnet>.4i+1/30 on the host end, 10.213.<subnet>.4i+2/30 in the
// namespace (the node's address; its default route is the host end). Inside a namespace
// 127.0.0.1 is the namespace's own loopback, so what the edge dials on the cloud side (GM's
// channel, the service proxy's cluster IPs) is served on 10.214.<subnet>.0/24, a range made local
// on the host by a route on a veth pair of the network's own: every address of it can be bound on
// the host and is reached from every namespace through its link. The nodes' range is routed into
// that pair too (its other end lies in an empty namespace), so that while a node's link is down
// its address is not routed out of the machine by the default route, where anything may answer.
//
// Everything is named with the prefix snx<subnet>- (namespaces and links; addresses and routes
// belong to the links and go with them), so Sweep removes what a killed run left, and Close
// removes everything. Only the two /24s of the subnet are used; Setup refuses a subnet whose
// ranges already hold an address of this machine. It needs root, ip and nsenter (Available).
//
// A partition is Down: the host end of the node's veth set down, so every packet between the
// node and the rest of the machine is dropped while the node's own processes keep talking to
// each other. Processes are started in a namespace with Command (nsenter); the harness listens
// and dials in one with Listen and Dialer (a thread that entered the namespace creates the
// socket).
package netns
