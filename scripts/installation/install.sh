#!/usr/bin/env bash
# Installs Sedna on a Kubernetes (KubeEdge) cluster from a checkout or a release bundle, or removes
# it. Nothing is downloaded: every manifest comes from ${SEDNA_ROOT}/build; images are pulled by the
# nodes from wherever SEDNA_IMAGE_REPO says (load them there first for an air-gapped cluster).
#
#   SEDNA_ACTION=create scripts/installation/install.sh
#   SEDNA_ACTION=delete scripts/installation/install.sh
#
# Settings (environment):
#   SEDNA_ACTION        create (default) or delete.
#   SEDNA_ROOT          the checkout or extracted release bundle holding build/ (default: this
#                       script's checkout).
#   SEDNA_VERSION       image tag of sedna-gm, sedna-lc and sedna-kb (default: the manifests' tag).
#   SEDNA_IMAGE_REPO    registry and path the images are pulled from, e.g. registry.local/sedna
#                       (default: the manifests' kubeedge/...).
#   SEDNA_GM_ADDRESS    host:port the LCs dial GM at (default: the address the installed LCs
#                       already dial, else the manifests' gm.sedna:9000, the Service, which edge
#                       nodes reach only with cluster DNS and service routing there, e.g. EdgeMesh). Set it when the edge nodes have neither: an address
#                       of GM they can reach (a NodePort or load balancer in front of Service gm).
#                       A certificate generated here names its host too; one that is kept must.
#   SEDNA_GM_TLS_CERT, SEDNA_GM_TLS_KEY, SEDNA_GM_CA_FILE
#                       bring your own GM serving certificate, its key and the CA bundle LCs
#                       trust; all three or none. Without them a CA and a certificate are
#                       generated with openssl when the Secret sedna-gm-tls does not exist yet.
#   SEDNA_ROTATE_CERTS  true: issue a new generated CA and certificate even though one exists
#                       (the LCs' bundle keeps the old CA next to the new one).
#   SEDNA_WAIT          false: do not wait for GM, LCs and the knowledge base to be ready.
#   SEDNA_WAIT_TIMEOUT  how long to wait for each of them (default 300s).
#   SEDNA_DELETE_OBJECTS true: let delete remove the CRDs although Sedna objects (jobs, services,
#                       datasets, models) still exist, deleting those objects with them.
#   SEDNA_KEEP_KB_DATA  true: delete keeps the knowledge base's PersistentVolumeClaim (its data).
#   SEDNA_ALLOW_INVALID_OBJECTS true: apply the CRDs although stored Sedna objects are invalid
#                       under their new schemas (create checks them first and stops otherwise).
#   KUBECTL             the kubectl to use (default: kubectl on PATH); KUBECONFIG as usual.
#
# What create makes (and delete removes, nothing else): the 11 CRDs of build/crds, the namespace
# sedna (only if it did not exist), build/gm, build/lc and build/kb, and, when generated here, the
# Secret sedna-gm-tls and the ConfigMap sedna-gm-ca. Re-running create changes nothing that is
# already as the manifests say, and never replaces a certificate unless asked to.
set -o errexit -o nounset -o pipefail

SEDNA_ACTION=${SEDNA_ACTION:-create}
SEDNA_ROOT=${SEDNA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SEDNA_IMAGE_REPO=${SEDNA_IMAGE_REPO:-}
SEDNA_GM_ADDRESS=${SEDNA_GM_ADDRESS:-}
SEDNA_WAIT=${SEDNA_WAIT:-true}
SEDNA_WAIT_TIMEOUT=${SEDNA_WAIT_TIMEOUT:-300s}
SEDNA_ROTATE_CERTS=${SEDNA_ROTATE_CERTS:-false}
SEDNA_DELETE_OBJECTS=${SEDNA_DELETE_OBJECTS:-false}
SEDNA_KEEP_KB_DATA=${SEDNA_KEEP_KB_DATA:-false}
SEDNA_ALLOW_INVALID_OBJECTS=${SEDNA_ALLOW_INVALID_OBJECTS:-false}
KUBECTL=${KUBECTL:-kubectl}

NAMESPACE=sedna
FIELD_MANAGER=sedna-install
# Marks what this script made, so that delete removes exactly that.
MANAGED_LABEL=app.kubernetes.io/managed-by=sedna-install
NS_ANNOTATION=sedna.io/created-by
CERT_DAYS=${SEDNA_CERT_DAYS:-825}
CA_DAYS=${SEDNA_CA_DAYS:-3650}
SEDNA_KINDS=(datasets models jointinferenceservices incrementallearningjobs federatedlearningjobs
  lifelonglearningjobs reidjobs videoanalyticsjobs featureextractionservices objectsearchservices
  objecttrackingservices)

log() { echo "sedna install: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Temporary directories of this run (mktemp -d: 0700), which hold private keys and tokens for a
# moment. An EXIT trap removes them however the script ends: normally, by die, or by errexit (a
# RETURN trap would not run on those).
TMP_DIRS=()
# Scratch CRDs of the schema check (check_stored_objects), removed however the script ends.
CHECK_CRDS=()
cleanup() {
  [[ ${#TMP_DIRS[@]} -eq 0 ]] || rm -rf "${TMP_DIRS[@]}"
  [[ ${#CHECK_CRDS[@]} -eq 0 ]] || "${KUBECTL}" delete crd --ignore-not-found --wait=false "${CHECK_CRDS[@]}" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# tmpdir sets the variable named $1 to a new temporary directory removed at exit. It must not run
# in a subshell (as $(tmpdir) would), or the directory would not be recorded.
tmpdir() {
  local d
  d=$(mktemp -d)
  TMP_DIRS+=("${d}")
  printf -v "$1" '%s' "${d}"
}
kc() { "${KUBECTL}" "$@"; }

BUILD="${SEDNA_ROOT}/build"
[[ -d "${BUILD}/crds" && -d "${BUILD}/gm" && -d "${BUILD}/lc" ]] ||
  die "SEDNA_ROOT=${SEDNA_ROOT} has no build/crds, build/gm and build/lc (a checkout or release bundle)"

# The manifests in the order they are applied (and the reverse of the order they are deleted).
manifests() {
  ls "${BUILD}"/crds/*.yaml
  echo "${BUILD}/gm/rbac.yaml" "${BUILD}/gm/config.yaml" "${BUILD}/gm/deployment.yaml" | tr ' ' '\n'
  echo "${BUILD}/lc/daemonset.yaml"
  # The knowledge base, when this checkout has it.
  if compgen -G "${BUILD}/kb/*.yaml" >/dev/null; then ls "${BUILD}"/kb/*.yaml; fi
}

# The manifests' default tag, e.g. v0.7.0 from "image: kubeedge/sedna-gm:v0.7.0".
default_version() {
  sed -nE 's#^ *image: *kubeedge/sedna-gm:([^ ]+)$#\1#p' "${BUILD}/gm/deployment.yaml" | head -n1
}
SEDNA_VERSION=${SEDNA_VERSION:-$(default_version)}

# GM_HOST is SEDNA_GM_ADDRESS's host (brackets of an IPv6 address removed), empty without it;
# set by resolve_gm_address.
GM_HOST=

# gm_host_is_ip reports whether GM_HOST is an IP address (a certificate names it as IP:, not DNS:).
gm_host_is_ip() { [[ "${GM_HOST}" =~ ^[0-9.]+$ || "${GM_HOST}" == *:* ]]; }

# manifest_gm_address is the LCs' GM_ADDRESS in build/lc, e.g. gm.sedna:9000.
manifest_gm_address() {
  sed -nE 's#.*\{name: GM_ADDRESS, value: "([^"]*)"\}.*#\1#p' "${BUILD}"/lc/*.yaml | head -n1
}

# resolve_gm_address checks SEDNA_GM_ADDRESS and sets GM_HOST. Unset, it keeps the address the
# installed LC DaemonSet already dials when that is not the manifests' (a KubeEdge install given
# SEDNA_GM_ADDRESS before): re-running create for an upgrade or a rotation must not put the edge
# LCs back on a Service name they cannot resolve.
resolve_gm_address() {
  if [[ -z "${SEDNA_GM_ADDRESS}" ]]; then
    local current
    current=$(kc -n "${NAMESPACE}" get daemonset sedna-lc \
      -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="GM_ADDRESS")].value}' 2>/dev/null || true)
    if [[ -n "${current}" && "${current}" != "$(manifest_gm_address)" ]]; then
      log "keeping the LCs' GM address ${current} (set SEDNA_GM_ADDRESS to change it)"
      SEDNA_GM_ADDRESS=${current}
    fi
  fi
  [[ -n "${SEDNA_GM_ADDRESS}" ]] || return 0
  [[ "${SEDNA_GM_ADDRESS}" =~ ^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$ ]] ||
    die "SEDNA_GM_ADDRESS=${SEDNA_GM_ADDRESS}: want host:port (a DNS name, an IPv4 address or [IPv6]) without a scheme"
  local port=${BASH_REMATCH[3]}
  ((10#${port} >= 1 && 10#${port} <= 65535)) || die "SEDNA_GM_ADDRESS=${SEDNA_GM_ADDRESS}: port ${port} is not 1-65535"
  GM_HOST=${SEDNA_GM_ADDRESS%:*}
  GM_HOST=${GM_HOST#[}
  GM_HOST=${GM_HOST%]}
  if [[ "${GM_HOST}" =~ ^[0-9.]+$ ]]; then
    local IFS=. octets
    read -r -a octets <<<"${GM_HOST}"
    [[ ${#octets[@]} -eq 4 && "${GM_HOST}" != *..* && "${GM_HOST}" != *. ]] ||
      die "SEDNA_GM_ADDRESS=${SEDNA_GM_ADDRESS}: ${GM_HOST} is not an IPv4 address (four numbers 0-255)"
    local o
    for o in "${octets[@]}"; do
      ((10#${o} <= 255)) || die "SEDNA_GM_ADDRESS=${SEDNA_GM_ADDRESS}: ${GM_HOST} is not an IPv4 address (four numbers 0-255)"
    done
  fi
}

# render prints a manifest with Sedna's images set to SEDNA_IMAGE_REPO and SEDNA_VERSION, and the
# LCs' GM_ADDRESS set to SEDNA_GM_ADDRESS.
render() {
  local repo_expr='\1kubeedge/\2'
  [[ -n "${SEDNA_IMAGE_REPO}" ]] && repo_expr="\\1${SEDNA_IMAGE_REPO%/}/\\2"
  local addr_expr='&'
  [[ -n "${SEDNA_GM_ADDRESS}" ]] && addr_expr="\\1\"${SEDNA_GM_ADDRESS}\""
  sed -E -e "s#^( *image: *)kubeedge/(sedna-[a-z0-9-]+):[^ \"]+#${repo_expr}:${SEDNA_VERSION}#" \
    -e "s#(\{name: GM_ADDRESS, value: )\"[^\"]*\"#${addr_expr}#" "$1"
}

apply() {
  render "$1" | kc apply --server-side --force-conflicts --field-manager="${FIELD_MANAGER}" -f - >&2
}

ensure_namespace() {
  if kc get namespace "${NAMESPACE}" >/dev/null 2>&1; then
    return 0
  fi
  log "creating namespace ${NAMESPACE}"
  kc create namespace "${NAMESPACE}" >&2
  kc annotate namespace "${NAMESPACE}" "${NS_ANNOTATION}=install.sh" >&2
}

# generate_certs issues a CA and GM's serving certificate into dir: ca.crt, tls.crt, tls.key. The
# CA's key never leaves the temporary directory: it signs this one certificate and is deleted, so
# no one (not even this cluster's admins) can later issue a certificate the LCs would trust.
generate_certs() {
  local dir=$1
  command -v openssl >/dev/null || die "openssl is needed to generate GM's certificate (or set SEDNA_GM_TLS_CERT, SEDNA_GM_TLS_KEY and SEDNA_GM_CA_FILE)"
  (
    cd "${dir}"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "${CA_DAYS}" \
      -subj "/CN=sedna-gm-ca $(date -u +%Y%m%dT%H%M%SZ)" -keyout ca.key -out ca.crt \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=gm.${NAMESPACE}" \
      -keyout tls.key -out tls.csr 2>/dev/null
    local san="DNS:gm.${NAMESPACE},DNS:gm.${NAMESPACE}.svc,DNS:gm.${NAMESPACE}.svc.cluster.local"
    if [[ -n "${GM_HOST}" ]]; then
      if gm_host_is_ip; then san+=",IP:${GM_HOST}"; else san+=",DNS:${GM_HOST}"; fi
    fi
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" "subjectAltName=${san}" >ext.cnf
    openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "${CERT_DAYS}" \
      -extfile ext.cnf -out tls.crt 2>/dev/null
    rm -f ca.key ca.srl tls.csr ext.cnf
  )
}

ensure_certs() {
  local dir
  tmpdir dir
  local have_secret=false
  kc -n "${NAMESPACE}" get secret sedna-gm-tls >/dev/null 2>&1 && have_secret=true

  if [[ -n "${SEDNA_GM_TLS_CERT:-}${SEDNA_GM_TLS_KEY:-}${SEDNA_GM_CA_FILE:-}" ]]; then
    [[ -f "${SEDNA_GM_TLS_CERT:-}" && -f "${SEDNA_GM_TLS_KEY:-}" && -f "${SEDNA_GM_CA_FILE:-}" ]] ||
      die "SEDNA_GM_TLS_CERT, SEDNA_GM_TLS_KEY and SEDNA_GM_CA_FILE must all name files"
    log "using the given GM certificate and CA"
    # Checked before anything is applied: a refused install must not have replaced the live one.
    require_cert_names_gm_host "${SEDNA_GM_TLS_CERT}"
    kc -n "${NAMESPACE}" create secret tls sedna-gm-tls --cert="${SEDNA_GM_TLS_CERT}" --key="${SEDNA_GM_TLS_KEY}" \
      --dry-run=client -o yaml | kc apply --server-side --force-conflicts --field-manager="${FIELD_MANAGER}" -f - >&2
    kc -n "${NAMESPACE}" create configmap sedna-gm-ca --from-file=ca.crt="${SEDNA_GM_CA_FILE}" \
      --dry-run=client -o yaml | kc apply --server-side --force-conflicts --field-manager="${FIELD_MANAGER}" -f - >&2
    return 0
  fi

  if [[ "${have_secret}" == true && "${SEDNA_ROTATE_CERTS}" != true ]]; then
    kc -n "${NAMESPACE}" get configmap sedna-gm-ca >/dev/null 2>&1 ||
      die "Secret ${NAMESPACE}/sedna-gm-tls exists but ConfigMap ${NAMESPACE}/sedna-gm-ca (the CA LCs trust) does not: create it, or set SEDNA_GM_CA_FILE with the certificate files"
    log "keeping GM's certificate (Secret ${NAMESPACE}/sedna-gm-tls; SEDNA_ROTATE_CERTS=true issues a new one)"
    require_cert_names_gm_host
    return 0
  fi

  log "generating a CA and GM's serving certificate for gm.${NAMESPACE}.svc"
  generate_certs "${dir}"
  local bundle="${dir}/bundle.crt"
  cp "${dir}/ca.crt" "${bundle}"
  if [[ "${SEDNA_ROTATE_CERTS}" == true ]]; then
    # LCs keep trusting the old CA until they have read the new bundle; the old CA's certificates
    # are appended once, so rotating again does not grow the bundle without end.
    kc -n "${NAMESPACE}" get configmap sedna-gm-ca -o jsonpath='{.data.ca\.crt}' 2>/dev/null |
      awk '/BEGIN CERTIFICATE/{n++} n==1' >>"${bundle}" || true
  fi
  # The CA bundle first: an LC that reads it before GM serves the new certificate still trusts GM.
  kc -n "${NAMESPACE}" create configmap sedna-gm-ca --from-file=ca.crt="${bundle}" --dry-run=client -o yaml |
    kc label --local -f - "${MANAGED_LABEL}" -o yaml |
    kc apply --server-side --force-conflicts --field-manager="${FIELD_MANAGER}" -f - >&2
  kc -n "${NAMESPACE}" create secret tls sedna-gm-tls --cert="${dir}/tls.crt" --key="${dir}/tls.key" --dry-run=client -o yaml |
    kc label --local -f - "${MANAGED_LABEL}" -o yaml |
    kc apply --server-side --force-conflicts --field-manager="${FIELD_MANAGER}" -f - >&2
}

# require_cert_names_gm_host stops the install when SEDNA_GM_ADDRESS is set and GM's certificate
# (the file given, else Secret sedna-gm-tls's) does not name its host: every LC would then refuse GM.
require_cert_names_gm_host() {
  [[ -n "${GM_HOST}" ]] || return 0
  local dir check=-checkhost cert=${1:-} what="the given certificate ${1:-}"
  gm_host_is_ip && check=-checkip
  command -v openssl >/dev/null || { log "warning: no openssl to check that GM's certificate names ${GM_HOST}"; return 0; }
  if [[ -z "${cert}" ]]; then
    tmpdir dir
    cert="${dir}/tls.crt"
    what="GM's certificate (Secret ${NAMESPACE}/sedna-gm-tls)"
    kc -n "${NAMESPACE}" get secret sedna-gm-tls -o jsonpath='{.data.tls\.crt}' | base64 -d >"${cert}"
  fi
  openssl x509 -in "${cert}" -noout "${check}" "${GM_HOST}" | grep -q ' does match' ||
    die "${what} does not name ${GM_HOST} of SEDNA_GM_ADDRESS, so the LCs would refuse GM: set SEDNA_ROTATE_CERTS=true to issue one that does, or bring one (SEDNA_GM_TLS_CERT, ...)"
}

# ensure_kb_tokens creates the knowledge base's write and read tokens (Secret sedna-kb-token) when
# this checkout has the knowledge base and the Secret does not exist yet.
ensure_kb_tokens() {
  compgen -G "${BUILD}/kb/*.yaml" >/dev/null || return 0
  grep -q sedna-kb-token "${BUILD}"/kb/*.yaml || return 0
  if kc -n "${NAMESPACE}" get secret sedna-kb-token >/dev/null 2>&1; then
    log "keeping the knowledge base's tokens (Secret ${NAMESPACE}/sedna-kb-token)"
    return 0
  fi
  log "generating the knowledge base's tokens (Secret ${NAMESPACE}/sedna-kb-token)"
  # Files in a 0700 directory, not --from-literal: a token on kubectl's command line is readable
  # by every user of this machine (ps, /proc/<pid>/cmdline) while it runs.
  local dir
  tmpdir dir
  (
    umask 077
    head -c 32 /dev/urandom | base64 | tr -d '\n' >"${dir}/token"
    head -c 32 /dev/urandom | base64 | tr -d '\n' >"${dir}/read-token"
  )
  kc -n "${NAMESPACE}" create secret generic sedna-kb-token \
    --from-file=token="${dir}/token" --from-file=read-token="${dir}/read-token" --dry-run=client -o yaml |
    kc label --local -f - "${MANAGED_LABEL}" -o yaml |
    kc apply --server-side --force-conflicts --field-manager="${FIELD_MANAGER}" -f - >&2
}

wait_ready() {
  [[ "${SEDNA_WAIT}" == true ]] || { log "not waiting for readiness (SEDNA_WAIT=${SEDNA_WAIT})"; return 0; }
  local failed=()
  local workloads
  workloads=$(manifests | grep -v /crds/ | while read -r f; do
    render "${f}" | kc apply --dry-run=client -o name -f - 2>/dev/null
  done | grep -E '^(deployment|daemonset|statefulset)\.apps/' || true)
  for w in ${workloads}; do
    log "waiting for ${w} (timeout ${SEDNA_WAIT_TIMEOUT})"
    kc -n "${NAMESPACE}" rollout status "${w}" --timeout="${SEDNA_WAIT_TIMEOUT}" >&2 || failed+=("${w}")
  done
  if [[ ${#failed[@]} -gt 0 ]]; then
    log "not ready: ${failed[*]}"
    log "look at: ${KUBECTL} -n ${NAMESPACE} get pods -o wide; ${KUBECTL} -n ${NAMESPACE} describe ${failed[0]}"
    exit 2
  fi
}

# check_stored_objects validates every stored Sedna object against the CRDs about to be applied,
# before they are: the API server does not re-validate stored objects when a CRD changes, so an
# object a new schema rejects would stay stored, readable, and refuse every later update of the
# offending fields (GM's status writes included). The new schema of each kind that has objects is
# installed as a scratch CRD of another group (<plural>.upgrade-check.sedna.io, status as a plain
# field so it is validated too) and every object is created there with --dry-run=server: the API
# server validates it, CEL rules included, and stores nothing. The scratch CRDs go at once.
CHECK_GROUP=upgrade-check.sedna.io
check_stored_objects() {
  local dir invalid=0
  tmpdir dir
  for k in "${SEDNA_KINDS[@]}"; do
    kc get crd "${k}.sedna.io" >/dev/null 2>&1 || continue
    # One JSON object per line: kind, name, namespace, spec and status of every stored object.
    kc get "${k}.sedna.io" -A -o jsonpath='{range .items[*]}{"{\"apiVersion\":\"'"${CHECK_GROUP}"'/"}{.apiVersion}{"\",\"kind\":\""}{.kind}{"\",\"metadata\":{\"name\":\""}{.metadata.name}{"\",\"namespace\":\""}{.metadata.namespace}{"\"},\"spec\":"}{.spec}{",\"status\":"}{.status}{"}\n"}{end}' |
      sed -e "s#\"${CHECK_GROUP}/sedna.io/#\"${CHECK_GROUP}/#" -e 's#,"status":}$#}#' -e 's#"spec":,#"spec":{},#' >"${dir}/${k}.json"
    [[ -s "${dir}/${k}.json" ]] || continue
    CHECK_CRDS+=("${k}.${CHECK_GROUP}")
    sed -E -e "s/^  name: ${k}\.sedna\.io$/  name: ${k}.${CHECK_GROUP}/" -e "s/^  group: sedna\.io$/  group: ${CHECK_GROUP}/" \
      -e '/^    subresources:$/,/^      status: \{\}$/d' "${BUILD}/crds/sedna.io_${k}.yaml" |
      kc apply --server-side --force-conflicts --field-manager="${FIELD_MANAGER}" -f - >/dev/null
    local out tries=0
    # (kubectl wait fails on a CRD that has no conditions yet, as a just-created one.)
    until [[ "$(kc get crd "${k}.${CHECK_GROUP}" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" == True ]]; do
      ((++tries < 60)) || die "the scratch CRD ${k}.${CHECK_GROUP} was not established"
      sleep 1
    done
    tries=0
    # kubectl may not see the new group in discovery at once ("no matches for kind").
    until out=$(kc create --dry-run=server -o name -f "${dir}/${k}.json" 2>&1); do
      if grep -q 'no matches for kind\|could not find the requested resource' <<<"${out}" && ((++tries < 20)); then
        sleep 1
        continue
      fi
      invalid=1
      log "stored ${k} that the new schema rejects:"
      grep -v '^[a-z.-]*/' <<<"${out}" | sed "s/${CHECK_GROUP}/sedna.io/g" >&2 || true
      break
    done
    kc delete crd --ignore-not-found --wait=false "${k}.${CHECK_GROUP}" >/dev/null
  done
  [[ ${invalid} -eq 0 ]] && return 0
  if [[ "${SEDNA_ALLOW_INVALID_OBJECTS}" == true ]]; then
    log "applying the CRDs anyway (SEDNA_ALLOW_INVALID_OBJECTS=true): those objects stay stored, but updates to their invalid fields are refused"
    return 0
  fi
  die "the CRDs were not changed: fix or delete the objects above, or set SEDNA_ALLOW_INVALID_OBJECTS=true"
}

create() {
  log "installing Sedna ${SEDNA_VERSION} from ${SEDNA_ROOT}"
  resolve_gm_address
  log "checking stored Sedna objects against the new CRDs"
  check_stored_objects
  log "applying the CRDs"
  for f in "${BUILD}"/crds/*.yaml; do apply "${f}"; done
  kc wait --for condition=established --timeout=60s $(for k in "${SEDNA_KINDS[@]}"; do echo "crd/${k}.sedna.io"; done) >&2
  ensure_namespace
  ensure_certs
  ensure_kb_tokens
  manifests | grep -v /crds/ | while read -r f; do
    log "applying ${f#"${SEDNA_ROOT}"/}"
    apply "${f}"
  done
  wait_ready
  cat >&2 <<EOF

Sedna ${SEDNA_VERSION} is installed in namespace ${NAMESPACE}.
  - GM: ${KUBECTL} -n ${NAMESPACE} get deploy sedna-gm   (the leader serves LCs on Service gm.${NAMESPACE}:9000)
  - LCs run on nodes labelled node-role.kubernetes.io/edge: ${KUBECTL} -n ${NAMESPACE} get ds sedna-lc
  - Metrics: Service sedna-gm-metrics:8080 (docs/operations.md lists what to alert on)
  - Try an example: ${KUBECTL} apply -f examples/joint_inference/mnist/ (see its README; its
    images are sedna-example/...:v0.1: with a private registry edit them, docs/install.md)
  - Uninstall: SEDNA_ACTION=delete $0
EOF
}

delete() {
  log "removing Sedna from the cluster"
  local left=()
  for k in "${SEDNA_KINDS[@]}"; do
    if kc get crd "${k}.sedna.io" >/dev/null 2>&1; then
      while read -r o; do [[ -n "${o}" ]] && left+=("${o}"); done < <(kc get "${k}.sedna.io" -A \
        -o jsonpath='{range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{"\n"}{end}' 2>/dev/null || true)
    fi
  done
  if [[ ${#left[@]} -gt 0 && "${SEDNA_DELETE_OBJECTS}" != true ]]; then
    die "${#left[@]} Sedna objects still exist (${left[*]:0:5}...); delete them first, or set SEDNA_DELETE_OBJECTS=true to delete them with the CRDs"
  fi
  # Everything applied from the manifests, in reverse: workloads first, the CRDs last.
  local files
  mapfile -t files < <(manifests)
  for ((i = ${#files[@]} - 1; i >= 0; i--)); do
    if [[ "${SEDNA_KEEP_KB_DATA}" == true ]]; then
      # The knowledge base's volume claim (its database and files) stays.
      render "${files[i]}" | awk 'BEGIN { RS = "\n---\n" } !/(^|\n)kind: PersistentVolumeClaim\n/ { printf "%s\n---\n", $0 }' |
        kc delete --ignore-not-found --wait=true -f - >&2
      continue
    fi
    render "${files[i]}" | kc delete --ignore-not-found --wait=true -f - >&2
  done
  # What GM makes for itself: its leader-election Lease and its LC report marks.
  kc -n "${NAMESPACE}" delete lease sedna-gm --ignore-not-found >&2 2>/dev/null || true
  kc -n "${NAMESPACE}" delete configmap sedna-gm-report-marks --ignore-not-found >&2 2>/dev/null || true
  # Certificates only if this script generated them; given ones are the user's.
  kc -n "${NAMESPACE}" delete secret,configmap -l "${MANAGED_LABEL}" --ignore-not-found >&2 2>/dev/null || true
  if [[ "$(kc get namespace "${NAMESPACE}" -o jsonpath="{.metadata.annotations.sedna\.io/created-by}" 2>/dev/null)" == install.sh ]]; then
    log "deleting namespace ${NAMESPACE} (created by install.sh)"
    kc delete namespace "${NAMESPACE}" --wait=true --timeout="${SEDNA_WAIT_TIMEOUT}" >&2
  fi
  log "Sedna is removed"
}

case "${SEDNA_ACTION}" in
  create) create ;;
  delete) delete ;;
  *) die "SEDNA_ACTION=${SEDNA_ACTION}: want create or delete" ;;
esac
