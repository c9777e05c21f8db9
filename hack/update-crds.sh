#!/usr/bin/env bash
# Regenerates the CustomResourceDefinitions in build/crds (one file per kind) from the markers in
# pkg/apis with controller-gen.
#
# Usage: hack/update-crds.sh [OUTPUT_DIR]   OUTPUT_DIR defaults to build/crds.
set -o errexit -o nounset -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-${REPO_ROOT}/build/crds}
cd "${REPO_ROOT}"
mkdir -p "${OUT}"
rm -f "${OUT}"/sedna.io_*.yaml
# generateEmbeddedObjectMeta keeps name, labels and annotations of embedded pod templates in the
# schema, so the API server does not prune them. allowDangerousTypes admits upstream's float64 fields.
go tool controller-gen \
  crd:crdVersions=v1,generateEmbeddedObjectMeta=true,allowDangerousTypes=true \
  paths=./pkg/apis/... \
  output:crd:artifacts:config="${OUT}"
