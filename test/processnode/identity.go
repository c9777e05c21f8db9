package processnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// imageUser and imageGroup are the user every image of the table runs as: hack/images builds
// them all on one base whose /etc/passwd has the non-root user 65532 (group 65532) and which
// sets USER 65532:65532.
const (
	imageUser  int64 = 65532
	imageGroup int64 = 65532
)

// canDropPrivileges says whether containers run as the user their pod asks for: only a harness
// running as root can switch users (setresuid) and give files away (chown). Otherwise every
// container runs as the harness's user, and files keep their owner.
func canDropPrivileges() bool { return os.Geteuid() == 0 }

// identity is who a container's process runs as, as a container runtime sets it up.
type identity struct {
	uid, gid int64
	groups   []int64 // supplementary: fsGroup, then supplementalGroups
	// capabilities is the bounding set (lower-case names without CAP_); for a non-root uid the
	// process has none whatever the set.
	capabilities []string
	noNewPrivs   bool
}

// defaultCapabilities is what containerd and CRI-O give a container that adds or drops nothing.
var defaultCapabilities = []string{"chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid",
	"setuid", "setfcap", "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write"}

// containerIdentity is the user, group, supplementary groups and capabilities the container runs
// with: runAsUser and runAsGroup of the container, else of the pod, else the image's user (65532)
// and that user's group; a runAsUser without runAsGroup runs with the group /etc/passwd of the
// image gives that user (65532 for 65532, 0 for any other, which the image does not list).
func containerIdentity(pod *corev1.Pod, c *corev1.Container) identity {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	id := identity{uid: imageUser, gid: imageGroup}
	uidSet := false
	if u := firstSet(csc.RunAsUser, psc.RunAsUser); u != nil {
		id.uid, uidSet = *u, true
	}
	switch g := firstSet(csc.RunAsGroup, psc.RunAsGroup); {
	case g != nil:
		id.gid = *g
	case uidSet && id.uid != imageUser:
		id.gid = 0
	}
	if psc.FSGroup != nil {
		id.groups = append(id.groups, *psc.FSGroup)
	}
	for _, g := range psc.SupplementalGroups {
		if !slices.Contains(id.groups, g) {
			id.groups = append(id.groups, g)
		}
	}
	caps := slices.Clone(defaultCapabilities)
	if csc.Capabilities != nil {
		for _, d := range csc.Capabilities.Drop {
			name := capName(d)
			if name == "all" {
				caps = nil
				break
			}
			caps = slices.DeleteFunc(caps, func(c string) bool { return c == name })
		}
		for _, a := range csc.Capabilities.Add {
			if name := capName(a); !slices.Contains(caps, name) {
				caps = append(caps, name)
			}
		}
	}
	if csc.Privileged != nil && *csc.Privileged {
		caps = []string{"all"}
	}
	id.capabilities = caps
	id.noNewPrivs = csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation
	return id
}

func capName(c corev1.Capability) string {
	return strings.TrimPrefix(strings.ToLower(string(c)), "cap_")
}

func firstSet(values ...*int64) *int64 {
	for _, v := range values {
		if v != nil {
			return v
		}
	}
	return nil
}

// setprivArgs is the setpriv(1) command line that becomes this identity and execs the rest.
func (id identity) setprivArgs(setpriv string) []string {
	// The kernel clears the parent-death signal when the credentials change: keep restores it,
	// so the worker still dies with a harness that dies without stopping its pods.
	args := []string{setpriv, "--reuid=" + strconv.FormatInt(id.uid, 10), "--regid=" + strconv.FormatInt(id.gid, 10), "--pdeathsig=keep"}
	if len(id.groups) == 0 {
		args = append(args, "--clear-groups")
	} else {
		groups := make([]string, len(id.groups))
		for i, g := range id.groups {
			groups[i] = strconv.FormatInt(g, 10)
		}
		args = append(args, "--groups="+strings.Join(groups, ","))
	}
	bounding := "-all"
	for _, c := range id.capabilities {
		if c == "all" {
			bounding = "+all"
			break
		}
		bounding += ",+" + c
	}
	args = append(args, "--bounding-set="+bounding)
	if id.noNewPrivs {
		args = append(args, "--no-new-privs")
	}
	return append(args, "--")
}

// wrap returns argv run as this identity through setpriv; binaries are resolved here, against
// the harness's PATH.
func (id identity) wrap(argv []string) ([]string, error) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return nil, fmt.Errorf("running the container as its user: %w", err)
	}
	binary, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", argv[0], err)
	}
	return append(append(id.setprivArgs(setpriv), binary), argv[1:]...), nil
}

// fsUser is the user the kubelet gives projected service-account tokens to: the runAsUser every
// container (init containers included) runs with, when they all set the same one; nil otherwise
// (an image's user does not count).
func fsUser(pod *corev1.Pod) *int64 {
	var user *int64
	for _, containers := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range containers {
			var csc *int64
			if containers[i].SecurityContext != nil {
				csc = containers[i].SecurityContext.RunAsUser
			}
			var psc *int64
			if pod.Spec.SecurityContext != nil {
				psc = pod.Spec.SecurityContext.RunAsUser
			}
			u := firstSet(csc, psc)
			if u == nil || (user != nil && *user != *u) {
				return nil
			}
			user = u
		}
	}
	return user
}

// fsGroupOf is the pod's fsGroup, or nil.
func fsGroupOf(pod *corev1.Pod) *int64 {
	if pod.Spec.SecurityContext == nil {
		return nil
	}
	return pod.Spec.SecurityContext.FSGroup
}

// applyFSGroup gives a volume to the pod's fsGroup as the kubelet does (SetVolumeOwnership):
// every file and directory gets group fsGroup, files group read (and write unless readOnly),
// directories group read, execute (and write) and setgid, so new files inherit the group.
func applyFSGroup(dir string, gid int64, readOnly bool) error {
	fileMask, dirMask := os.FileMode(0o660), os.FileMode(0o770)
	if readOnly {
		fileMask, dirMask = 0o440, 0o550
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if err := os.Lchown(path, -1, int(gid)); err != nil {
			return fmt.Errorf("fsGroup %d on %s: %w", gid, path, err)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode().Perm() | fileMask
		if d.IsDir() {
			mode = info.Mode().Perm() | dirMask | os.ModeSetgid
		}
		return os.Chmod(path, mode)
	})
}

// ensureTraversable makes dir and the directories above it searchable by every user (o+x), so
// that a container running as another user than the harness reaches its volumes and its root,
// which a real container sees through its own root filesystem. Only directories under the
// machine's temporary directory are changed (where tests keep node roots); any other one that is
// not searchable is an error naming it.
func ensureTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil && info.Mode().Perm()&0o001 == 0 {
			real, _ := filepath.EvalSymlinks(d)
			if real == tmp || !strings.HasPrefix(real, tmp+"/") {
				return fmt.Errorf("%s is not searchable by other users, so containers running as their own user cannot reach %s: make it o+x", d, dir)
			}
			if err := os.Chmod(d, info.Mode().Perm()|0o011); err != nil {
				return err
			}
		}
		if d == "/" {
			return nil
		}
	}
}
