#!/usr/bin/env bash
# Builds KubeEdge's cloudcore and edgecore, pinned by hack/tools/kubeedge, from the Go module proxy
# into a cache outside the clone (SEDNA_TEST_BIN_CACHE, default ~/.cache/sedna-test-binaries), and
# copies KubeEdge's CRDs from the same module version next to them. Only the KubeEdge end-to-end tier
# (make e2e-kubeedge) uses them. A cold build takes about nine minutes on two cores.
#
# Prints the cache directory on stdout. Idempotent: nothing is built that is already present.
set -o errexit -o nounset -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBEEDGE_VERSION=v1.23.1
PLATFORM="$(go env GOOS)-$(go env GOARCH)"
CACHE_ROOT=${SEDNA_TEST_BIN_CACHE:-${HOME}/.cache/sedna-test-binaries}
CACHE="${CACHE_ROOT}/kubeedge-${KUBEEDGE_VERSION}-${PLATFORM}"
TOOLS="${REPO_ROOT}/hack/tools/kubeedge"

log() { echo "install-kubeedge: $*" >&2; }

# The same lock as hack/install-test-binaries.sh: one builder at a time on the shared cache.
mkdir -p "$(dirname "${CACHE_ROOT}.lock")"
exec 9>"${CACHE_ROOT}.lock"
command -v flock >/dev/null && flock 9

grep -q "github.com/kubeedge/kubeedge ${KUBEEDGE_VERSION}" "${TOOLS}/go.mod" ||
  { log "hack/tools/kubeedge/go.mod does not pin github.com/kubeedge/kubeedge ${KUBEEDGE_VERSION}"; exit 1; }

missing=()
[[ -x "${CACHE}/cloudcore" ]] || missing+=(github.com/kubeedge/kubeedge/cloud/cmd/cloudcore)
[[ -x "${CACHE}/edgecore" ]] || missing+=(github.com/kubeedge/kubeedge/edge/cmd/edgecore)
if [[ ${#missing[@]} -gt 0 ]]; then
  log "building ${missing[*]} ${KUBEEDGE_VERSION} into ${CACHE} (about nine minutes when cold)"
  mkdir -p "${CACHE}.tmp"
  minor=${KUBEEDGE_VERSION#v1.}; minor=${minor%%.*}
  pkg=github.com/kubeedge/kubeedge/pkg/version
  ldflags="-s -w -X ${pkg}.gitVersion=${KUBEEDGE_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
  ldflags+=" -X ${pkg}.gitTreeState=clean"
  (cd "${TOOLS}" && go build -ldflags "${ldflags}" -o "${CACHE}.tmp/" "${missing[@]}")
  mkdir -p "${CACHE}"
  mv "${CACHE}.tmp"/* "${CACHE}/"
  rmdir "${CACHE}.tmp"
fi

if [[ ! -d "${CACHE}/crds" ]]; then
  dir=$(cd "${TOOLS}" && go mod download -json "github.com/kubeedge/kubeedge@${KUBEEDGE_VERSION}" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d "${dir}/build/crds" ]] || { log "no build/crds in the module (${dir})"; exit 1; }
  rm -rf "${CACHE}/crds.tmp"
  cp -r "${dir}/build/crds" "${CACHE}/crds.tmp"
  chmod -R u+w "${CACHE}/crds.tmp"
  mv "${CACHE}/crds.tmp" "${CACHE}/crds"
fi
log "cloudcore and edgecore ${KUBEEDGE_VERSION} in ${CACHE}"
echo "${CACHE}"
