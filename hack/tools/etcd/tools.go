//go:build tools

// Package tools pins the etcd server that hack/install-test-binaries.sh builds for integration and
// end-to-end tests. It is a module of its own because etcd's dependency set differs from Kubernetes'.
package tools

import _ "go.etcd.io/etcd/server/v3"
