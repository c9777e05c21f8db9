//go:build e2e

// Package e2e runs Sedna end to end on one machine: `make e2e`. See test/e2e/framework.
package e2e

import (
	"os"
	"testing"

	"github.com/sedna-go/sedna/test/e2e/framework"
)

func TestMain(m *testing.M) { os.Exit(framework.Main(m)) }
