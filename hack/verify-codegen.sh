#!/usr/bin/env bash
# Fails when the generated deepcopy functions or client under pkg/ are stale: regenerates them in a
# temporary copy of the repository and diffs.
set -o errexit -o nounset -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "${TMP}"' EXIT

cd "${REPO_ROOT}"
tar --exclude=./_output --exclude=./.git -cf - . | tar -C "${TMP}" -xf -
"${REPO_ROOT}/hack/update-codegen.sh" "${TMP}" >/dev/null
if ! diff -ruN "${REPO_ROOT}/pkg" "${TMP}/pkg"; then
  echo "generated code is stale: run hack/update-codegen.sh" >&2
  exit 1
fi
echo "generated code is up to date"
