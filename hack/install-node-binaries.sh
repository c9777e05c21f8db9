#!/usr/bin/env bash
# Builds the node agents the real-node tier (make e2e-real) runs — kubelet and kube-proxy — from the
# Go module proxy into _output/bin, from the same module (hack/tools/kubernetes) and version as the
# control plane of hack/install-test-binaries.sh.
#
# Cached like the control plane, but under a key of their own
# (SEDNA_TEST_BIN_CACHE/kubelet-<version>-<platform>): adding them to the control plane's key would
# make every cached machine rebuild the control plane (16 minutes and more). Idempotent.
set -o errexit -o nounset -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_VERSION=v1.37.2
OUT=${OUT:-${REPO_ROOT}/_output/bin}
PLATFORM="$(go env GOOS)-$(go env GOARCH)"
CACHE_ROOT=${SEDNA_TEST_BIN_CACHE:-${HOME}/.cache/sedna-test-binaries}
NODE_CACHE="${CACHE_ROOT}/kubelet-${KUBE_VERSION}-${PLATFORM}"
NODE_BINARIES=(kubelet kube-proxy)

log() { echo "install-node-binaries: $*" >&2; }

# One builder at a time (the same lock as hack/install-test-binaries.sh).
mkdir -p "$(dirname "${CACHE_ROOT}.lock")"
exec 9>"${CACHE_ROOT}.lock"
command -v flock >/dev/null && flock 9

grep -q "k8s.io/kubernetes ${KUBE_VERSION}" "${REPO_ROOT}/hack/tools/kubernetes/go.mod" ||
  { log "hack/tools/kubernetes/go.mod does not pin k8s.io/kubernetes ${KUBE_VERSION}"; exit 1; }

missing=()
for b in "${NODE_BINARIES[@]}"; do
  [[ -x "${NODE_CACHE}/${b}" ]] || missing+=("k8s.io/kubernetes/cmd/${b}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  log "building ${missing[*]} ${KUBE_VERSION} into ${NODE_CACHE} (about ten minutes when cold)"
  rm -rf "${NODE_CACHE}.tmp"
  mkdir -p "${NODE_CACHE}.tmp"
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  (cd "${REPO_ROOT}/hack/tools/kubernetes" && go build -ldflags "${ldflags}" -o "${NODE_CACHE}.tmp/" "${missing[@]}")
  mkdir -p "${NODE_CACHE}"
  mv "${NODE_CACHE}.tmp"/* "${NODE_CACHE}/"
  rmdir "${NODE_CACHE}.tmp"
fi

mkdir -p "${OUT}"
for b in "${NODE_BINARIES[@]}"; do
  if ! cmp -s "${NODE_CACHE}/${b}" "${OUT}/${b}"; then
    cp -f "${NODE_CACHE}/${b}" "${OUT}/"
    log "installed ${b} in ${OUT}"
  fi
done
"${OUT}/kubelet" --version >&2
