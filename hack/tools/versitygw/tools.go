//go:build tools

// Package tools pins versitygw, the S3 gateway that hack/install-test-binaries.sh builds so the
// storage tests of the local controller can talk to a real S3 server over loopback instead of a
// mock. It is a module of its own so versitygw's large dependency set (cloud SDKs, fiber, ...)
// never enters the main module's go.mod.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
