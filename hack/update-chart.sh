#!/usr/bin/env bash
# Regenerates charts/sedna's crds/, templates/build-*.yaml and values.yaml from build/ (the one
# source of the manifests; hack/chart says how).
set -o errexit -o nounset -o pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${REPO_ROOT}"
go run ./hack/chart --root . --out charts/sedna
