//go:build tools

// Package tools pins KWOK, which keeps the scale test's fake edge nodes Ready and their pods
// Running (test/scale builds it from here into the test-binary cache).
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
