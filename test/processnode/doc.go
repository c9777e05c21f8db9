// Package processnode is the test and development harness that stands in for KubeEdge's edged on
// one machine: it runs the containers of the pods bound to a node as local processes. It is never
// shipped as a product component.
//
// Resolving: a container's command, arguments and environment are resolved as the kubelet would
// (fieldRef, secretKeyRef, configMapKeyRef, envFrom and $(VAR) expansion), and images are mapped
// to local binaries through a documented table.
//
// Volumes: hostPath volumes live under <root>/host/<path>, and so does a persistentVolumeClaim
// volume: its claim must be Bound (the pod waits, as for a missing Secret, until it is) and the
// bound PersistentVolume's hostPath or local path is the volume, as the kubelet mounts node-local
// volumes (the claim's readOnly is not enforced); every other supported volume lives in
// <root>/pods/<uid>/volumes/<name>. emptyDir starts empty. configMap and secret volumes hold every
// key, or only the listed items, as files; projected volumes combine configMap, secret,
// downwardAPI (fieldRef) and serviceAccountToken sources. All are written before the first
// container starts; a missing non-optional object holds the pod Pending with its containers
// Waiting (CreateContainerConfigError) and is retried with backoff, as the kubelet does.
// ConfigMaps and Secrets are read when the pod starts (for its volumes) and when each container
// starts or restarts (for its environment), with NodeOptions.ObjectClient when set; a volume's
// contents are not updated afterwards.
//
// Tokens: serviceAccountToken sources are minted with the TokenRequest API for the pod's service
// account and bound to the pod, so a TokenReview names the pod and its node. They are written with
// mode 0600 and replaced atomically (temporary file and rename) once 80% of their lifetime has
// passed, until the pod's processes end.
//
// Statuses: the runner's status of each pod is pushed when it changes (polled every 0.5 s), and
// every 10 s the statuses the API server holds are compared with the pods' own, as the kubelet's
// status manager does: a phase or condition another writer changed (the node lifecycle controller
// marks the pods of a node it lost not ready) or a write lost while the node was cut off is
// pushed again.
//
// Hosts: every pod gets <root>/pods/<uid>/etc-hosts as the kubelet writes it (localhost, the pod's
// IP and hostname, hostAliases) followed by the node's ClusterHosts lines, rewritten in place
// every 2s when those change. The machine's /etc/hosts is never modified.
//
// Isolation (IsolateHosts, which local Sedna always sets): each container runs in its own mount
// namespace (unshare, then a /bin/sh script that mounts and execs the container's process, so the
// PID, process group and exit code stay the container's; without root, unshare also creates a
// user namespace). There:
//   - the pod's hosts file is bind-mounted over /etc/hosts;
//   - the container gets a root directory of its own, <root>/pods/<uid>/roots/<container>, made
//     anew at each start and holding only its volumeMounts: each volume's directory (or the file
//     or directory at its subPath) is bind-mounted at <container root>/<mountPath>, parents first;
//   - a readOnly mount is remounted read-only (mount -o remount,bind,ro): a write to it fails with
//     EROFS, whatever the process's user;
//   - with securityContext.readOnlyRootFilesystem the container root itself is read-only (its
//     mounts keep their own mode): directories above and next to its mounts, and its working
//     directory, refuse writes with EROFS;
//   - the working directory is <container root>/<workingDir>, or the container root;
//   - the paths the container is told are rewritten into its root: every environment value,
//     argument, --flag= value and element of a ;-separated list (MODEL_URLS) that is an absolute
//     path in a top-level directory holding a mount path. For a mount at /rootfs/data, /rootfs,
//     /rootfs/data/x and /rootfs/etc all become <container root>/rootfs/...: the LC's
//     ROOTFS_MOUNT_DIR reaches its mounts and nothing else of the node, and a worker's
//     DATA_PATH_PREFIX (/home/data, above its hostPath mounts) still yields host paths when
//     stripped.
//
// What isolation does not enforce, because a container here is a process of this machine, not an
// image: the machine's / is the process's / (there is no chroot, so that binaries, libraries and
// the container's own executable are found), so paths it is not told but builds itself from
// fixed strings (/tmp, /etc/ssl, $HOME, os.TempDir), every top-level directory that holds none of
// its mount paths, "/" itself, paths that climb out of its root with "..", and
// absolute symlinks inside a volume all reach the machine, with the container's user's rights there. Volumes of types this harness does not run are not mounted (their paths are
// rewritten into the root and are found empty). A process that has CAP_SYS_ADMIN in its
// namespace (root) can remount or unmount; containers are not confined against themselves.
//
// Without IsolateHosts containers are plain processes: nothing is enforced. They see the
// machine's /etc/hosts, mount paths are rewritten straight to the volumes' directories (writable
// whatever readOnly says), a DATA_PATH_PREFIX above hostPath mounts becomes <root>/host, and the
// working directory is <root>/pods/<uid>.
//
// Users (when the harness runs as root; otherwise it cannot drop privileges and every container
// runs as the harness's user, with files keeping their owner): each container's process runs as
// the user and group its securityContext asks for (the container's over the pod's), else as the
// images' user 65532:65532 (hack/images builds every image with USER 65532:65532; a runAsUser
// without runAsGroup gets group 65532 for 65532, 0 for any other, as the image's /etc/passwd
// says), with fsGroup and supplementalGroups as supplementary groups. setpriv(1) switches to it
// (isolated: last, after the mounts), with the capability bounding set the runtime's defaults
// minus drop plus add (so root containers keep only what they are given; a non-root process has
// none) and no_new_privs for allowPrivilegeEscalation false. Volumes are owned as a kubelet owns
// them: a missing hostPath is created root:root 0755 (so the image's user cannot write it), an
// emptyDir is 0777, and with fsGroup emptyDirs, local PersistentVolumes and the configMap, secret,
// downwardAPI and projected volumes become the group's (group read, write unless read-only,
// setgid directories), hostPath ones never; a service-account token is 0600 and its owner's when
// every container shares a runAsUser (group-readable with fsGroup), else the projection's mode.
// The directories above the node's root are made searchable (o+x, under the temporary directory
// only), since without chroot a container reaches its root and volumes through them.
//
// Logs: each container's output (all restarts) is in <root>/logs/<ns>_<pod>_<container>.log, and
// the node serves the kubelet's containerLogs route on <IP>:KubeletPort (10250) with a
// self-signed certificate, so `kubectl logs` works through the apiserver (which reaches nodes by
// InternalIP and does not verify kubelet certificates unless told to). Follow is not supported.
package processnode
