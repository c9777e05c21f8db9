//go:build tools

// Package tools pins the control-plane commands that hack/install-test-binaries.sh builds for
// integration and end-to-end tests, and the node agents (kubelet, kube-proxy) that
// hack/install-node-binaries.sh builds for the real-node tier. Nothing here is part of the product.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
