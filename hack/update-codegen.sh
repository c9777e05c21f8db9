#!/usr/bin/env bash
# Regenerates deepcopy functions and the typed client (clientset with fake, listers, informers,
# apply configurations) from pkg/apis with k8s.io/code-generator's kube_codegen.sh.
#
# Usage: hack/update-codegen.sh [ROOT]   ROOT defaults to the repository; verify-codegen.sh passes
# a temporary copy.
set -o errexit -o nounset -o pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${1:-${REPO_ROOT}}
MODULE=github.com/sedna-go/sedna

cd "${REPO_ROOT}"
# `go list -m` names the module's directory only once the module is in the module cache, which
# nothing else guarantees on a fresh machine: download it first (a no-op when it is there).
go mod download k8s.io/code-generator
CODEGEN_PKG=$(go list -m -f '{{.Dir}}' k8s.io/code-generator)
[[ -n "${CODEGEN_PKG}" && -f "${CODEGEN_PKG}/kube_codegen.sh" ]] ||
  { echo "update-codegen: k8s.io/code-generator is not in the module cache (${CODEGEN_PKG:-no directory})" >&2; exit 1; }
# kube_codegen.sh installs its generators with `go install` inside the module cache copy.
export GOFLAGS="${GOFLAGS:-} -mod=mod"
# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

cd "${ROOT}"
kube::codegen::gen_helpers \
  --boilerplate "${REPO_ROOT}/hack/boilerplate.go.txt" \
  "${ROOT}/pkg/apis"

# Types embedded from k8s.io/api use client-go's apply configurations.
externals=(
  k8s.io/api/apps/v1.DeploymentSpec:k8s.io/client-go/applyconfigurations/apps/v1
  k8s.io/api/apps/v1.DeploymentStrategy:k8s.io/client-go/applyconfigurations/apps/v1
  k8s.io/api/batch/v1.PodFailurePolicy:k8s.io/client-go/applyconfigurations/batch/v1
  k8s.io/api/batch/v1.SuccessPolicy:k8s.io/client-go/applyconfigurations/batch/v1
  k8s.io/api/batch/v1.JobSchedulingConfiguration:k8s.io/client-go/applyconfigurations/batch/v1
  k8s.io/api/batch/v1.JobSpec:k8s.io/client-go/applyconfigurations/batch/v1
  k8s.io/api/core/v1.PodTemplateSpec:k8s.io/client-go/applyconfigurations/core/v1
  k8s.io/api/autoscaling/v2.MetricSpec:k8s.io/client-go/applyconfigurations/autoscaling/v2
  k8s.io/api/autoscaling/v2.HorizontalPodAutoscalerBehavior:k8s.io/client-go/applyconfigurations/autoscaling/v2
)
kube::codegen::gen_client \
  --with-watch \
  --with-applyconfig \
  --applyconfig-externals "$(IFS=,; echo "${externals[*]}")" \
  --output-dir "${ROOT}/pkg/client" \
  --output-pkg "${MODULE}/pkg/client" \
  --boilerplate "${REPO_ROOT}/hack/boilerplate.go.txt" \
  "${ROOT}/pkg/apis"
