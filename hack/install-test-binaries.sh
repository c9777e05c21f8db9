#!/usr/bin/env bash
# Builds the control plane that integration and end-to-end tests run against — etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl — and versitygw, the S3
# gateway the local controller's storage tests talk to, from the Go module proxy into _output/bin.
#
# A cold build takes ten minutes or more on two cores, so built binaries are kept in a cache outside
# the clone, keyed by version and platform (SEDNA_TEST_BIN_CACHE, default ~/.cache/sedna-test-binaries),
# and copied from there. Idempotent: nothing is built that is already present.
set -o errexit -o nounset -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
VERSITYGW_VERSION=v1.8.0
OUT=${OUT:-${REPO_ROOT}/_output/bin}
PLATFORM="$(go env GOOS)-$(go env GOARCH)"
CACHE_ROOT=${SEDNA_TEST_BIN_CACHE:-${HOME}/.cache/sedna-test-binaries}
KUBE_CACHE="${CACHE_ROOT}/kubernetes-${KUBE_VERSION}-${PLATFORM}"
ETCD_CACHE="${CACHE_ROOT}/etcd-${ETCD_VERSION}-${PLATFORM}"
VERSITYGW_CACHE="${CACHE_ROOT}/versitygw-${VERSITYGW_VERSION}-${PLATFORM}"
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

log() { echo "install-test-binaries: $*" >&2; }

# Two builds of the same binary at once (parallel checkouts, make targets run side by side) would
# race on the cache's temporary files: one builder at a time, the others wait and then find it built.
mkdir -p "$(dirname "${CACHE_ROOT}.lock")"
exec 9>"${CACHE_ROOT}.lock"
command -v flock >/dev/null && flock 9

# The module files must pin the versions above; a mismatch would cache one version under another's key.
grep -q "k8s.io/kubernetes ${KUBE_VERSION}" "${REPO_ROOT}/hack/tools/kubernetes/go.mod" ||
  { log "hack/tools/kubernetes/go.mod does not pin k8s.io/kubernetes ${KUBE_VERSION}"; exit 1; }
grep -q "go.etcd.io/etcd/server/v3 ${ETCD_VERSION}" "${REPO_ROOT}/hack/tools/etcd/go.mod" ||
  { log "hack/tools/etcd/go.mod does not pin etcd ${ETCD_VERSION}"; exit 1; }
grep -q "github.com/versity/versitygw ${VERSITYGW_VERSION}" "${REPO_ROOT}/hack/tools/versitygw/go.mod" ||
  { log "hack/tools/versitygw/go.mod does not pin versitygw ${VERSITYGW_VERSION}"; exit 1; }

build_kubernetes() {
  local missing=()
  for b in "${KUBE_BINARIES[@]}"; do
    [[ -x "${KUBE_CACHE}/${b}" ]] || missing+=("k8s.io/kubernetes/cmd/${b}")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "building ${missing[*]} ${KUBE_VERSION} into ${KUBE_CACHE} (about ten minutes when cold)"
  mkdir -p "${KUBE_CACHE}.tmp"
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  (cd "${REPO_ROOT}/hack/tools/kubernetes" && go build -ldflags "${ldflags}" -o "${KUBE_CACHE}.tmp/" "${missing[@]}")
  mkdir -p "${KUBE_CACHE}"
  mv "${KUBE_CACHE}.tmp"/* "${KUBE_CACHE}/"
  rmdir "${KUBE_CACHE}.tmp"
}

build_etcd() {
  [[ -x "${ETCD_CACHE}/etcd" ]] && return 0
  log "building etcd ${ETCD_VERSION} into ${ETCD_CACHE}"
  mkdir -p "${ETCD_CACHE}"
  (cd "${REPO_ROOT}/hack/tools/etcd" && go build -ldflags "-s -w" -o "${ETCD_CACHE}/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "${ETCD_CACHE}/etcd.tmp" "${ETCD_CACHE}/etcd"
}

build_versitygw() {
  [[ -x "${VERSITYGW_CACHE}/versitygw" ]] && return 0
  log "building versitygw ${VERSITYGW_VERSION} into ${VERSITYGW_CACHE}"
  mkdir -p "${VERSITYGW_CACHE}"
  # main.Version is what `versitygw --version` prints; upstream's Makefile sets it from git, which a
  # module-proxy build does not have.
  (cd "${REPO_ROOT}/hack/tools/versitygw" &&
    go build -ldflags "-s -w -X main.Version=${VERSITYGW_VERSION}" \
      -o "${VERSITYGW_CACHE}/versitygw.tmp" github.com/versity/versitygw/cmd/versitygw)
  mv "${VERSITYGW_CACHE}/versitygw.tmp" "${VERSITYGW_CACHE}/versitygw"
}

install_from() {
  local src=$1
  mkdir -p "${OUT}"
  if ! cmp -s "${src}" "${OUT}/$(basename "${src}")"; then
    cp -f "${src}" "${OUT}/"
    log "installed $(basename "${src}") in ${OUT}"
  fi
}

build_etcd
build_kubernetes
build_versitygw
install_from "${ETCD_CACHE}/etcd"
install_from "${VERSITYGW_CACHE}/versitygw"
for b in "${KUBE_BINARIES[@]}"; do install_from "${KUBE_CACHE}/${b}"; done
"${OUT}/kube-apiserver" --version >&2
# sed reads all of it: head would exit early and SIGPIPE etcd, failing the script under pipefail.
"${OUT}/etcd" --version | sed -n 1p >&2
"${OUT}/versitygw" --version >&2
