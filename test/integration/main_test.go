package integration

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/sedna-go/sedna/test/integration/framework"
)

// controlPlane is shared by the tests of this package; each test works in its own namespace.
var controlPlane *framework.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	cp, err := framework.Start(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration tests need a control plane:", err)
		return 1
	}
	controlPlane = cp
	code := m.Run()
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	return code
}
