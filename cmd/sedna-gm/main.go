// Command sedna-gm is Sedna's global manager: the cloud operator that runs the feature
// controllers and serves the LCs of the edge nodes.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/sedna-go/sedna/cmd/sedna-gm/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
