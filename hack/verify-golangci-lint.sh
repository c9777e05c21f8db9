#!/usr/bin/env bash
# Runs golangci-lint (.golangci.yml), built from the Go module proxy at the version pinned in
# hack/tools/golangci-lint and cached outside the clone like the other tool binaries.
set -o errexit -o nounset -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(grep -oE 'golangci-lint/v2 v[0-9][0-9.]*' "${REPO_ROOT}/hack/tools/golangci-lint/go.mod" | awk '{print $2}')
[[ -n "${VERSION}" ]] || { echo "verify-golangci-lint: no golangci-lint version in hack/tools/golangci-lint/go.mod" >&2; exit 1; }
CACHE=${SEDNA_TEST_BIN_CACHE:-${HOME}/.cache/sedna-test-binaries}/golangci-lint-${VERSION}-$(go env GOOS)-$(go env GOARCH)
if [[ ! -x "${CACHE}/golangci-lint" ]]; then
  echo "verify-golangci-lint: building golangci-lint ${VERSION} into ${CACHE}" >&2
  mkdir -p "${CACHE}"
  (cd "${REPO_ROOT}/hack/tools/golangci-lint" &&
    go build -o "${CACHE}/golangci-lint.tmp" github.com/golangci/golangci-lint/v2/cmd/golangci-lint)
  mv "${CACHE}/golangci-lint.tmp" "${CACHE}/golangci-lint"
fi
cd "${REPO_ROOT}"
# Another clone may lint at the same time (golangci-lint otherwise refuses with "parallel
# golangci-lint is running").
"${CACHE}/golangci-lint" run --allow-parallel-runners --timeout 10m ./...
