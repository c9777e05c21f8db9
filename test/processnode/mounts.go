package processnode

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// pathMap maps the paths a container is told (env values, arguments) to where they are on this
// machine.
type pathMap struct {
	mounts  []corev1.VolumeMount // subPathExpr already expanded into subPath
	volumes map[string]string    // volume name → its directory on this machine
	// root is the container's root directory when it runs isolated: every mount path, and every
	// directory above one, is rewritten into it. "" maps mount paths straight to the volumes'
	// directories (plain processes, which cannot mount).
	root string
}

// rewrite maps the paths in s: s itself, a --flag= value, or each element of a ';'-separated list.
func (m pathMap) rewrite(s string) string {
	// A flag's value is a path as much as a bare argument is: --token-file=/var/run/... .
	if flag, value, ok := strings.Cut(s, "="); ok && strings.HasPrefix(flag, "-") && !strings.Contains(flag, "/") {
		return flag + "=" + m.rewriteList(value)
	}
	return m.rewriteList(s)
}

// rewriteList rewrites each element of a ';'-separated list, Sedna's way of passing several
// locations in one variable (MODEL_URLS).
func (m pathMap) rewriteList(s string) string {
	parts := strings.Split(s, ";")
	for i := range parts {
		parts[i] = m.rewritePath(parts[i])
	}
	return strings.Join(parts, ";")
}

func (m pathMap) rewritePath(s string) string {
	if m.root != "" {
		return m.rootPath(s)
	}
	best, out := "", s
	for _, mount := range m.mounts {
		dir, ok := m.volumes[mount.Name]
		mountPath := strings.TrimSuffix(mount.MountPath, "/")
		if !ok || mountPath == "" || len(mountPath) <= len(best) {
			continue
		}
		if mount.SubPath != "" {
			dir = filepath.Join(dir, mount.SubPath)
		}
		if s == mountPath || strings.HasPrefix(s, mountPath+"/") {
			best, out = mountPath, dir+strings.TrimPrefix(s, mountPath)
		}
	}
	return out
}

// rootPath moves s into the container's root when it lies in a top-level directory that holds a
// mount path (/rootfs for the LC's /rootfs/data, /home for a worker's /home/data/...): such a
// directory is the container's own, where it finds its mounts and nothing else, whether it is told
// a mount path, a directory above one (ROOTFS_MOUNT_DIR, DATA_PATH_PREFIX) or a path next to one.
// The other top-level directories (/usr, /tmp, ...) stay the machine's, and so does / itself
// unless a volume is mounted there. Relative paths and URLs are left as they are.
func (m pathMap) rootPath(s string) string {
	if !strings.HasPrefix(s, "/") {
		return s
	}
	clean := filepath.Clean(s)
	for _, mount := range m.mounts {
		top := topDir(mount.MountPath)
		if clean == top || top == "/" || strings.HasPrefix(clean, top+"/") {
			out := filepath.Join(m.root, clean)
			if strings.HasSuffix(s, "/") && !strings.HasSuffix(out, "/") {
				out += "/"
			}
			return out
		}
	}
	return s
}

// topDir is the top-level directory of an absolute path: /rootfs for /rootfs/data, / for /.
func topDir(p string) string {
	clean := filepath.Clean("/" + p)
	if i := strings.IndexByte(clean[1:], '/'); i >= 0 {
		return clean[:i+1]
	}
	return clean
}

// containerRootPath is the directory a container's mounts are assembled in.
func (p *RunningPod) containerRootPath(container string) string {
	return filepath.Join(p.opts.NodeRoot, "pods", string(p.pod.UID), "roots", container)
}

// bindMount is one volumeMount of an isolated container: source (a volume's directory, or the
// file or directory at its subPath) bound at target inside the container's root.
type bindMount struct {
	source, target string
	readOnly, file bool
}

// isolation is what a container's mount namespace is built from.
type isolation struct {
	root         string // the container's root directory
	mounts       []bindMount
	readOnlyRoot bool   // securityContext.readOnlyRootFilesystem
	hostsFile    string // bound over /etc/hosts
	workDir      string // inside root
	// identity, when set, is who the container's process becomes once the mounts are in place
	// (setpriv); nil keeps the harness's user.
	identity *identity
}

// newIsolation prepares a container's root: an empty directory (a restarted container gets a new
// one, as it gets a new writable layer), and the bind mounts of its declared volumeMounts, parents
// before children. Mounts of volumes this harness does not run are left out.
func (p *RunningPod) newIsolation(c *corev1.Container, paths pathMap) (*isolation, error) {
	root := paths.root
	if err := os.RemoveAll(root); err != nil {
		return nil, fmt.Errorf("clearing the container's root: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("creating the container's root: %w", err)
	}
	iso := &isolation{root: root, hostsFile: p.hostsPath(), workDir: root,
		readOnlyRoot: c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem}
	if c.WorkingDir != "" {
		iso.workDir = filepath.Join(root, filepath.Clean("/"+c.WorkingDir))
	}
	for _, m := range paths.mounts {
		dir, ok := paths.volumes[m.Name]
		if !ok {
			continue
		}
		if m.SubPath != "" {
			dir = filepath.Join(dir, m.SubPath)
		}
		info, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("volumeMount %s: %w", m.Name, err)
		}
		iso.mounts = append(iso.mounts, bindMount{source: dir, target: filepath.Join(root, filepath.Clean("/"+m.MountPath)),
			readOnly: m.ReadOnly, file: !info.IsDir()})
	}
	slices.SortStableFunc(iso.mounts, func(a, b bindMount) int {
		return strings.Count(a.target, "/") - strings.Count(b.target, "/")
	})
	return iso, nil
}

// script is the /bin/sh program run in the container's new mount namespace before it becomes the
// container's process (exec "$@", which keeps the PID: the runner's process group and exit code
// are the container's). The root is bound onto itself first, so that it can be made read-only
// last without hiding the mounts inside it; mount points are created in order, so a mount nested
// in another volume gets its mount point in that volume, as a container runtime does; readOnly
// mounts are remounted read-only after every bind is in place. Any failure ends the script
// before the container's process starts, with mount's message in the container's log.
func (iso *isolation) script(mount, setpriv string) string {
	q, m := shellQuote, shellQuote(mount)
	lines := []string{"set -e", fmt.Sprintf("%s --bind %s %s", m, q(iso.root), q(iso.root))}
	for _, b := range iso.mounts {
		if b.file {
			lines = append(lines, fmt.Sprintf("mkdir -p -- %s; [ -e %s ] || : > %s", q(filepath.Dir(b.target)), q(b.target), q(b.target)))
		} else {
			lines = append(lines, fmt.Sprintf("mkdir -p -- %s", q(b.target)))
		}
		lines = append(lines, fmt.Sprintf("%s --bind %s %s", m, q(b.source), q(b.target)))
	}
	for _, b := range iso.mounts {
		if b.readOnly {
			lines = append(lines, fmt.Sprintf("%s -o remount,bind,ro %s", m, q(b.target)))
		}
	}
	lines = append(lines, fmt.Sprintf("mkdir -p -- %s", q(iso.workDir)))
	if iso.readOnlyRoot {
		lines = append(lines, fmt.Sprintf("%s -o remount,bind,ro %s", m, q(iso.root)))
	}
	lines = append(lines,
		fmt.Sprintf("%s --bind %s /etc/hosts", m, q(iso.hostsFile)),
		// The shell's working directory was taken before the root was bound onto itself: enter
		// the mount, or relative writes would miss a read-only root.
		fmt.Sprintf("cd -- %s", q(iso.workDir)))
	if iso.identity == nil {
		lines = append(lines, `exec "$@"`)
	} else {
		args := iso.identity.setprivArgs(setpriv)
		for i := range args {
			args[i] = q(args[i])
		}
		lines = append(lines, "exec "+strings.Join(args, " ")+` "$@"`)
	}
	return strings.Join(lines, "\n")
}

// wrap returns argv run in a private mount namespace set up by the script. Binaries are resolved
// here, against the harness's PATH, because the container's environment may set its own.
func (iso *isolation) wrap(argv []string) ([]string, error) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, fmt.Errorf("isolating the container: %w", err)
	}
	mount, err := exec.LookPath("mount")
	if err != nil {
		return nil, fmt.Errorf("isolating the container: %w", err)
	}
	setpriv := ""
	if iso.identity != nil {
		if setpriv, err = exec.LookPath("setpriv"); err != nil {
			return nil, fmt.Errorf("running the container as its user: %w", err)
		}
	}
	binary, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", argv[0], err)
	}
	wrapped := []string{unshare, "--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		// Unprivileged: a user namespace in which we are root may create the mount namespace.
		wrapped = append(wrapped, "--user", "--map-root-user")
	}
	wrapped = append(wrapped, "--", "/bin/sh", "-c", iso.script(mount, setpriv), "processnode-container", binary)
	return append(wrapped, argv[1:]...), nil
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
