// Command sedna-lc is Sedna's local controller: the edge daemon that keeps the node's models and
// datasets, runs the node's side of the learning features and talks to sedna-gm.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/sedna-go/sedna/cmd/sedna-lc/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
