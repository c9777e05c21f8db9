// Package localcluster runs a Kubernetes control plane on one machine for Sedna's end-to-end tests
// and hack/local-up.sh: etcd, kube-apiserver, kube-controller-manager and kube-scheduler as real
// processes, so that Deployments, DaemonSets, garbage collection, namespace deletion, service
// accounts and nodeSelector placement behave as they do on a real cluster — unlike the integration
// framework (envtest), which starts only etcd and the apiserver.
//
// The package owns everything under Options.Dir (certificates, etcd data, logs, kubeconfig) and the
// processes it starts; Stop ends all of them. It only reads the binaries in Options.BinDir, which
// hack/install-test-binaries.sh builds, and never downloads anything.
//
// Nodes are API objects only for now (AddNode): no kubelet runs, so pods are scheduled but never
// started. A kubelet stand-in that runs pods as local processes comes later.
package localcluster
