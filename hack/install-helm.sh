#!/usr/bin/env bash
# Builds Helm (pinned in hack/tools/helm) from the Go module proxy into _output/bin/helm, cached
# like the control plane in ${SEDNA_TEST_BIN_CACHE:-~/.cache/sedna-test-binaries}, keyed by version.
# hack/verify-chart.sh uses it to lint and render charts/sedna.
set -o errexit -o nounset -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELM_VERSION=v3.21.4
OUT=${OUT:-${REPO_ROOT}/_output/bin}
PLATFORM="$(go env GOOS)-$(go env GOARCH)"
CACHE="${SEDNA_TEST_BIN_CACHE:-${HOME}/.cache/sedna-test-binaries}/helm-${HELM_VERSION}-${PLATFORM}"

# Two builds of the same binary at once (parallel checkouts, make targets run side by side) would
# race on the cache's temporary files: one builder at a time, the others wait and then find it built.
mkdir -p "$(dirname "${SEDNA_TEST_BIN_CACHE:-${HOME}/.cache/sedna-test-binaries}.lock")"
exec 9>"${SEDNA_TEST_BIN_CACHE:-${HOME}/.cache/sedna-test-binaries}.lock"
command -v flock >/dev/null && flock 9

grep -q "helm.sh/helm/v3 ${HELM_VERSION}" "${REPO_ROOT}/hack/tools/helm/go.mod" ||
  { echo "install-helm: hack/tools/helm/go.mod does not pin helm ${HELM_VERSION}" >&2; exit 1; }
if [[ ! -x "${CACHE}/helm" ]]; then
  echo "install-helm: building helm ${HELM_VERSION} into ${CACHE}" >&2
  mkdir -p "${CACHE}"
  tmp=$(mktemp "${CACHE}/helm.XXXXXX")
  # internal/version.version is what `helm version` prints; a module-proxy build has no git tag.
  (cd "${REPO_ROOT}/hack/tools/helm" &&
    go build -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" -o "${tmp}" helm.sh/helm/v3/cmd/helm)
  mv "${tmp}" "${CACHE}/helm"
fi
mkdir -p "${OUT}"
cmp -s "${CACHE}/helm" "${OUT}/helm" || cp -f "${CACHE}/helm" "${OUT}/helm"
