// Command sedna-lc is Sedna's local controller: the edge daemon that keeps the node's models and
// datasets, runs the node's side of the learning features and talks to sedna-gm.
package main

import (
	"os"
	"syscall"

	"k8s.io/component-base/cli"

	"github.com/sedna-go/sedna/cmd/sedna-lc/app"
)

func main() {
	// Group-writable directories for the workers: the job directories the LC makes beneath a
	// job's output directory (mode 0775) are written by the workers, which run as the images'
	// user 65532, not as the LC's root. In an output directory the administrator gave to 65532's
	// group with setgid (install -d -o 65532 -g 65532 -m 2775), they inherit that group, and
	// with the default umask 022 they would be 0755, which the workers cannot write.
	syscall.Umask(0o002)
	os.Exit(cli.Run(app.NewCommand()))
}
