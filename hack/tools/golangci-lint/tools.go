//go:build tools

// Package tools pins golangci-lint, which hack/verify-golangci-lint.sh builds and runs.
package tools

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
