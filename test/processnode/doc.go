// Package processnode is the test and development harness that stands in for KubeEdge's edged on
// one machine: it runs the containers of the pods bound to a node as local processes. It is never
// shipped as a product component.
//
// Resolving: a container's command, arguments and environment are resolved as the kubelet would
// (fieldRef, secretKeyRef, configMapKeyRef, envFrom and $(VAR) expansion), and images are mapped
// to local binaries through a documented table.
//
// Volumes: hostPath volumes live under <root>/host/<path>; every other supported volume lives in
// <root>/pods/<uid>/volumes/<name>. emptyDir starts empty. configMap and secret volumes hold every
// key, or only the listed items, as files; projected volumes combine configMap, secret,
// downwardAPI (fieldRef) and serviceAccountToken sources. All are written before the first
// container starts; a missing non-optional object holds the pod Pending with its containers
// Waiting (CreateContainerConfigError) and is retried with backoff, as the kubelet does.
// ConfigMaps and Secrets are read once; later changes to them are not propagated.
//
// Tokens: serviceAccountToken sources are minted with the TokenRequest API for the pod's service
// account and bound to the pod, so a TokenReview names the pod and its node. They are written with
// mode 0600 and replaced atomically (temporary file and rename) once 80% of their lifetime has
// passed, until the pod's processes end.
//
// Paths: a process cannot mount, so environment values, arguments, --flag= values and the elements
// of ;-separated lists (MODEL_URLS) that start
// with a volumeMount's mountPath are rewritten to the volume's directory, or to <dir>/<subPath> for a
// subPath (or expanded subPathExpr) mount.
//
// Hosts: every pod gets <root>/pods/<uid>/etc-hosts as the kubelet writes it (localhost, the pod's
// IP and hostname, hostAliases) followed by the node's ClusterHosts lines, rewritten in place
// every 2s when those change. With IsolateHosts each container runs in its own mount namespace
// (unshare, then mount --bind of that file over /etc/hosts, then exec, so the PID, process group
// and exit code stay the container's); without it containers see the machine's /etc/hosts. The
// machine's /etc/hosts is never modified.
//
// Logs: each container's output (all restarts) is in <root>/logs/<ns>_<pod>_<container>.log, and
// the node serves the kubelet's containerLogs route on <IP>:KubeletPort (10250) with a
// self-signed certificate, so `kubectl logs` works through the apiserver (which reaches nodes by
// InternalIP and does not verify kubelet certificates unless told to). Follow is not supported.
package processnode
