package realnode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// HostPackages are the Debian packages the real nodes need.
var HostPackages = []string{"containerd", "runc", "containernetworking-plugins", "iptables"}

// CheckHost says why this machine cannot run real nodes (not root, not Linux), or nil.
func CheckHost() error {
	if os.Geteuid() != 0 {
		return errors.New("real nodes need root (containerd, network namespaces, bridges, iptables, mounts)")
	}
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		return fmt.Errorf("real nodes need Linux: %w", err)
	}
	return nil
}

// EnsureHostPackages installs HostPackages with apt-get when one of their commands is missing.
func EnsureHostPackages(ctx context.Context) error {
	missing := false
	for _, cmd := range []string{"containerd", "ctr", "runc", "iptables", "iptables-save", "ip"} {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = true
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		if _, err := os.Stat("/opt/cni/bin/bridge"); err != nil {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("containerd, runc, the CNI plugins or iptables are missing and there is no apt-get to install %v", HostPackages)
	}
	klog.FromContext(ctx).Info("Installing the node packages", "packages", HostPackages)
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y", "--no-install-recommends"}, HostPackages...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// sysctls are the kernel settings the nodes change (ip_forward for routing between the bridges;
// kubelet and kube-proxy set the others) and Host.Restore puts back.
var sysctls = []string{
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/route_localnet",
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// Host is a snapshot of what the nodes change on this machine.
type Host struct {
	// IPTables and IP6Tables are iptables-save's output per table, without comments and counters.
	IPTables, IP6Tables map[string][]string
	// Links are the network interfaces.
	Links []string
	// Mounts are the mount points.
	Mounts []string
	// Sysctls are the values of sysctls ("" when unreadable).
	Sysctls map[string]string
	// Paths says of each path SnapshotHost was asked to watch whether it exists.
	Paths map[string]bool
}

// SnapshotHost records the host's iptables rules, interfaces, mounts and sysctls, and which of
// paths (files and directories a run may create outside its directory: Cluster.SnapshotHost
// passes its HostPaths) exist.
func SnapshotHost(ctx context.Context, paths ...string) (*Host, error) {
	h := &Host{Sysctls: map[string]string{}, Paths: existing(paths)}
	var err error
	if h.IPTables, err = saveTables(ctx, "iptables-save"); err != nil {
		return nil, err
	}
	if h.IP6Tables, err = saveTables(ctx, "ip6tables-save"); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		h.Links = append(h.Links, e.Name())
	}
	mounts, err := mountPoints()
	if err != nil {
		return nil, err
	}
	h.Mounts = mounts
	sort.Strings(h.Mounts)
	for _, s := range sysctls {
		data, err := os.ReadFile(filepath.Join("/proc/sys", s))
		if err == nil {
			h.Sysctls[s] = strings.TrimSpace(string(data))
		}
	}
	return h, nil
}

// existing says of each of paths whether it exists.
func existing(paths []string) map[string]bool {
	out := map[string]bool{}
	for _, p := range paths {
		_, err := os.Lstat(p)
		out[p] = err == nil
	}
	return out
}

// saveTables runs iptables-save (or ip6tables-save) and returns each table's chains and rules.
func saveTables(ctx context.Context, command string) (map[string][]string, error) {
	if _, err := exec.LookPath(command); err != nil {
		return map[string][]string{}, nil //nolint:nilerr // no such tool: no rules of that family to keep
	}
	out, err := exec.CommandContext(ctx, command).Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	tables := map[string][]string{}
	table := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			tables[table] = nil
		case strings.HasPrefix(line, ":"):
			// ":CHAIN POLICY [packets:bytes]": the counters change all the time. A built-in
			// chain with the default policy ACCEPT is left out: listing a table (as kubelet
			// does) makes the kernel create it with those, which changes nothing.
			fields := strings.Fields(line)
			if fields[1] == "ACCEPT" {
				continue
			}
			tables[table] = append(tables[table], fields[0]+" "+fields[1])
		default:
			tables[table] = append(tables[table], line)
		}
	}
	return tables, nil
}

// Diff lists what other has that h had not — iptables chains and rules, interfaces, mounts, paths — and
// the sysctls whose values differ, one line each; empty when nothing was added or changed. What
// disappeared is not listed: on a machine shared with other test runs their mounts and links come
// and go, and nothing here removes anything it did not add.
func (h *Host) Diff(other *Host) []string {
	var out []string
	diffLines := func(what string, a, b []string) {
		inA := map[string]bool{}
		for _, l := range a {
			inA[l] = true
		}
		for _, l := range b {
			if !inA[l] {
				out = append(out, fmt.Sprintf("%s: added %s", what, l))
			}
		}
	}
	for _, fam := range []struct {
		name string
		a, b map[string][]string
	}{{"iptables", h.IPTables, other.IPTables}, {"ip6tables", h.IP6Tables, other.IP6Tables}} {
		tables := map[string]bool{}
		for t := range fam.a {
			tables[t] = true
		}
		for t := range fam.b {
			tables[t] = true
		}
		for t := range tables {
			diffLines(fam.name+" "+t, fam.a[t], fam.b[t])
		}
	}
	diffLines("link", h.Links, other.Links)
	diffLines("mount", h.Mounts, other.Mounts)
	for p, exists := range other.Paths {
		if exists && !h.Paths[p] {
			out = append(out, "path: added "+p)
		}
	}
	for k, v := range h.Sysctls {
		if other.Sysctls[k] != v {
			out = append(out, fmt.Sprintf("sysctl %s: %s, was %s", k, other.Sysctls[k], v))
		}
	}
	sort.Strings(out)
	return out
}

// RestoreSysctls puts back the sysctls the snapshot recorded.
func (h *Host) RestoreSysctls() error {
	var errs []error
	for k, v := range h.Sysctls {
		cur, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err == nil && strings.TrimSpace(string(cur)) == v {
			continue
		}
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring sysctl %s=%s: %w", k, v, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveIPTables removes the iptables and ip6tables chains that did not exist in the snapshot and
// whose names start with one of prefixes (KUBE- for kubelet and kube-proxy, CNI- for the CNI
// plugins), and the rules added since the snapshot to chains with those prefixes or jumping to
// them. Rules and chains of anything else on this machine are left alone.
func (h *Host) RemoveIPTables(ctx context.Context, prefixes ...string) error {
	var errs []error
	for _, fam := range []struct {
		save, cmd string
		before    map[string][]string
	}{{"iptables-save", "iptables", h.IPTables}, {"ip6tables-save", "ip6tables", h.IP6Tables}} {
		now, err := saveTables(ctx, fam.save)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for table, lines := range now {
			existed := map[string]bool{}
			for _, l := range fam.before[table] {
				if strings.HasPrefix(l, ":") {
					existed[strings.Fields(l)[0][1:]] = true
				}
			}
			isNew := func(chain string) bool {
				if existed[chain] {
					return false
				}
				for _, p := range prefixes {
					if strings.HasPrefix(chain, p) {
						return true
					}
				}
				return false
			}
			var newChains []string
			for _, l := range lines {
				if strings.HasPrefix(l, ":") {
					if c := strings.Fields(l)[0][1:]; isNew(c) {
						newChains = append(newChains, c)
					}
				}
			}
			hasPrefix := func(chain string) bool {
				for _, p := range prefixes {
					if strings.HasPrefix(chain, p) {
						return true
					}
				}
				return false
			}
			had := map[string]bool{}
			for _, l := range fam.before[table] {
				had[l] = true
			}
			// Rules added to kept chains go first: those of a kept chain with one of the prefixes
			// (a KUBE-SERVICES that existed before), and those of any chain that jump to a chain
			// with one of the prefixes.
			for _, l := range lines {
				fields := strings.Fields(l)
				if len(fields) < 2 || fields[0] != "-A" || isNew(fields[1]) || had[l] {
					continue
				}
				remove := hasPrefix(fields[1])
				for i, f := range fields {
					if (f == "-j" || f == "-g") && i+1 < len(fields) && hasPrefix(fields[i+1]) {
						remove = true
					}
				}
				if remove {
					args := append([]string{"-w", "-t", table, "-D"}, splitRule(l)[1:]...)
					if err := run(ctx, fam.cmd, args...); err != nil {
						errs = append(errs, err)
					}
				}
			}
			for _, c := range newChains {
				if err := run(ctx, fam.cmd, "-w", "-t", table, "-F", c); err != nil {
					errs = append(errs, err)
				}
			}
			for _, c := range newChains {
				if err := run(ctx, fam.cmd, "-w", "-t", table, "-X", c); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// splitRule splits an iptables-save rule into arguments, keeping double-quoted strings (comments)
// together.
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == '"':
			inQuote = !inQuote
			have = true
		case ch == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// mountPoints lists this mount namespace's mount points.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out, sc.Err()
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	dir = filepath.Clean(dir)
	mounts, err := mountPoints()
	if err != nil {
		return err
	}
	var under []string
	for _, m := range mounts {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			under = append(under, m)
		}
	}
	sort.Slice(under, func(i, j int) bool { return len(under[i]) > len(under[j]) })
	var errs []error
	for _, m := range under {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// listProcs maps every PID to its command line.
func listProcs() (map[int][]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[int][]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		out[pid] = strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	}
	return out, nil
}

// parentOf reads a process's parent PID from /proc/<pid>/stat.
func parentOf(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// descendants lists every process below pid.
func descendants(pid int) []int {
	procs, err := listProcs()
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for p := range procs {
		children[parentOf(p)] = append(children[parentOf(p)], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// killPID sends SIGKILL and waits briefly for the process to go.
func killPID(pid int) {
	if pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is fine
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
