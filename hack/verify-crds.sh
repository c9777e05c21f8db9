#!/usr/bin/env bash
# Fails when build/crds differs from what controller-gen makes of pkg/apis.
set -o errexit -o nounset -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "${TMP}"' EXIT

"${REPO_ROOT}/hack/update-crds.sh" "${TMP}"
if ! diff -ruN "${REPO_ROOT}/build/crds" "${TMP}"; then
  echo "build/crds is stale: run hack/update-crds.sh" >&2
  exit 1
fi
echo "CRDs are up to date"
