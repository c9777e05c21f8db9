#!/usr/bin/env bash
# Fails when charts/sedna has drifted from build/ (regenerate with hack/update-chart.sh), when
# `helm lint` finds a problem, or when the chart's template test fails (hack/chart/chart_test.go:
# the chart rendered with its defaults is build/, values change what they say).
set -o errexit -o nounset -o pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${REPO_ROOT}"
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT
cp -a charts/sedna "${tmp}/sedna"
go run ./hack/chart --root . --out "${tmp}/sedna"
if ! diff -r charts/sedna "${tmp}/sedna"; then
  echo "charts/sedna is out of date with build/: run hack/update-chart.sh" >&2
  exit 1
fi
hack/install-helm.sh
_output/bin/helm lint --strict charts/sedna
SEDNA_HELM="${REPO_ROOT}/_output/bin/helm" go test -count=1 -run 'TestChart' ./hack/chart/
