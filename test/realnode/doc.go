// Package realnode runs real Kubernetes nodes on this machine for the real-node test tier (make
// e2e-real): one containerd per node, each with its own socket, root and state directories and its
// own CNI bridge and pod subnet, and a real kubelet (and one kube-proxy) joined to a local control
// plane (test/localcluster). Pods run as real containers (runc, overlayfs, network namespaces),
// from images imported into containerd, since nothing can be pulled.
//
// It needs root, containerd, runc, the CNI plugins and iptables (EnsureHostPackages installs the
// Debian packages when they are missing). One real-node cluster runs at a time per machine: Start
// waits for LockPath and Stop releases it. Everything it adds to the host — bridges, veths, network
// namespaces, mounts, cgroups, iptables rules, sysctls, and the paths outside its directory that
// the kubelets and the pods write (KubeletHostPaths, Options.OwnedHostPaths and SharedHostPaths;
// an owned one that exists before is refused) — is removed again by Stop, and the Host snapshot
// (Cluster.SnapshotHost, Host.Diff, Cluster.Leftovers) lets a test assert that nothing is left.
package realnode
