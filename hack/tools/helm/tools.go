//go:build tools

// Package tools pins Helm, which hack/verify-chart.sh builds (cached like the test binaries) to
// lint charts/sedna and render it for the template test. It is a module of its own so Helm's
// dependencies never enter the main module's go.mod.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
