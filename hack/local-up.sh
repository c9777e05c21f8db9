#!/usr/bin/env bash
# Runs Sedna on this machine without containers or KubeEdge (see test/localsedna): builds the
# control-plane binaries if they are not cached, builds sedna-gm, sedna-lc and the example
# workers, and runs until Ctrl-C, then stops every process it started.
#
#   hack/local-up.sh [--edge-nodes N] [--demo] [--exit-after-demo] [--dir DIR] [--netns-subnet S (root)]
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

hack/install-test-binaries.sh
mkdir -p _output/bin
go build -o _output/bin/ ./cmd/... ./examples/...
go build -o _output/bin/local-up ./hack/local-up
# exec: Ctrl-C and SIGTERM reach local-up itself, which stops everything before it exits.
exec _output/bin/local-up "$@"
