//go:build tools

// Package tools pins KubeEdge's cloudcore and edgecore, which hack/install-kubeedge.sh builds (cached
// like the test binaries) for the KubeEdge end-to-end tier (make e2e-kubeedge). It is a module of its
// own so KubeEdge's dependencies (its forked Kubernetes among them) never enter the main module.
package tools

import (
	_ "github.com/kubeedge/kubeedge/cloud/cmd/cloudcore"
	_ "github.com/kubeedge/kubeedge/edge/cmd/edgecore"
)
