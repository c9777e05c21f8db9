package realnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/localcluster"
)

// DefaultSandboxImage is the pod sandbox image containerd is configured with: `make images` builds
// it (cmd/sedna-pause) with the default IMAGE_TAG.
const DefaultSandboxImage = "kubeedge/sedna-pause:v0.7.0"

// Config describes one node's container runtime.
type Config struct {
	// Dir holds everything of this containerd: config.toml, root/, state/, the socket, the CNI
	// configuration and IPAM state, and logs/containerd.log. Required; created if missing.
	Dir string
	// Name names the node in logs and errors. Required.
	Name string
	// BridgeName is the Linux bridge the node's pods attach to (at most 15 characters). It is
	// created by StartContainerd and deleted by Stop; it must not exist before. Required.
	BridgeName string
	// Subnet is the node's pod range, e.g. 10.244.1.0/24. The bridge gets its first address (the
	// pods' gateway, the node's IP); pods get the rest from host-local IPAM. Required.
	Subnet string
	// SandboxImage is containerd's sandbox_image; default DefaultSandboxImage. It must be imported
	// (ImportImages) before the first pod starts, as nothing can be pulled.
	SandboxImage string
	// CNIBinDir holds the CNI plugins (bridge, host-local, portmap, loopback); default the first of
	// /usr/lib/cni (Debian's containernetworking-plugins) and /opt/cni/bin that has them.
	CNIBinDir string
	// Binary is the containerd executable; default containerd on PATH.
	Binary string
}

// Containerd is a running containerd with its CNI bridge.
type Containerd struct {
	cfg     Config
	gateway net.IP
	subnet  *net.IPNet
	proc    *localcluster.Process
	logger  klog.Logger
}

// StartContainerd creates the node's bridge, writes containerd's and CNI's configuration under
// cfg.Dir and starts containerd, returning once its CRI service answers. The caller must call Stop,
// also when StartContainerd fails (Stop then removes what was made).
func StartContainerd(ctx context.Context, cfg Config) (*Containerd, error) {
	logger := klog.FromContext(ctx).WithValues("node", cfg.Name)
	if cfg.Dir == "" || cfg.Name == "" || cfg.BridgeName == "" || cfg.Subnet == "" {
		return nil, errors.New("realnode: Config.Dir, Name, BridgeName and Subnet are required")
	}
	if len(cfg.BridgeName) > 15 {
		return nil, fmt.Errorf("realnode: BridgeName %q is longer than 15 characters", cfg.BridgeName)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", cfg.Dir, err)
	}
	cfg.Dir = dir
	if cfg.SandboxImage == "" {
		cfg.SandboxImage = DefaultSandboxImage
	}
	if cfg.Binary == "" {
		cfg.Binary = "containerd"
	}
	if cfg.Binary, err = exec.LookPath(cfg.Binary); err != nil {
		return nil, fmt.Errorf("containerd is not installed (EnsureHostPackages installs it): %w", err)
	}
	if cfg.CNIBinDir == "" {
		for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
			if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
				cfg.CNIBinDir = d
				break
			}
		}
		if cfg.CNIBinDir == "" {
			return nil, errors.New("no CNI plugins in /usr/lib/cni or /opt/cni/bin (EnsureHostPackages installs them)")
		}
	}
	ip, subnet, err := net.ParseCIDR(cfg.Subnet)
	if err != nil {
		return nil, fmt.Errorf("realnode: Subnet: %w", err)
	}
	_ = ip
	gateway := make(net.IP, len(subnet.IP.To4()))
	copy(gateway, subnet.IP.To4())
	gateway[len(gateway)-1]++
	c := &Containerd{cfg: cfg, gateway: gateway, subnet: subnet, logger: logger}

	for _, d := range []string{c.path("root"), c.path("state"), c.path("cni", "net.d"), c.path("cni", "ipam"), c.path("logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return c, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := c.createBridge(ctx); err != nil {
		return c, err
	}
	if err := c.writeConfig(); err != nil {
		return c, err
	}
	c.proc, err = localcluster.StartProcess(ctx, "containerd", cfg.Binary, c.path("logs"), []string{"--config", c.path("config.toml")})
	if err != nil {
		return c, err
	}
	if err := c.waitCRI(ctx); err != nil {
		return c, err
	}
	logger.Info("containerd is up", "socket", c.Socket(), "bridge", cfg.BridgeName, "gateway", gateway)
	return c, nil
}

func (c *Containerd) path(elem ...string) string {
	return filepath.Join(append([]string{c.cfg.Dir}, elem...)...)
}

// Socket is containerd's gRPC socket path (kubelet's containerRuntimeEndpoint is "unix://" + it).
func (c *Containerd) Socket() string { return c.path("containerd.sock") }

// Endpoint is the socket as a CRI endpoint URL.
func (c *Containerd) Endpoint() string { return "unix://" + c.Socket() }

// Gateway is the bridge's address: the pods' default gateway, and the node's IP.
func (c *Containerd) Gateway() net.IP { return c.gateway }

// Subnet is the node's pod range.
func (c *Containerd) Subnet() *net.IPNet { return c.subnet }

// Name is the node's name.
func (c *Containerd) Name() string { return c.cfg.Name }

// Dir is the working directory.
func (c *Containerd) Dir() string { return c.cfg.Dir }

// LogPath is containerd's log.
func (c *Containerd) LogPath() string { return c.path("logs", "containerd.log") }

// ImportImages imports image archives (docker or OCI format, as `make images` writes them) into
// the namespace kubelet uses, k8s.io.
func (c *Containerd) ImportImages(ctx context.Context, tarballs ...string) error {
	for _, t := range tarballs {
		cmd := exec.CommandContext(ctx, "ctr", "--address", c.Socket(), "--namespace", "k8s.io", "images", "import", t)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("importing %s into containerd of %s: %w\n%s", t, c.cfg.Name, err, out)
		}
	}
	return nil
}

func (c *Containerd) createBridge(ctx context.Context) error {
	if linkExists(c.cfg.BridgeName) {
		return fmt.Errorf("bridge %s exists already (a previous run? Sweep removes it)", c.cfg.BridgeName)
	}
	ones, _ := c.subnet.Mask.Size()
	for _, args := range [][]string{
		{"link", "add", "name", c.cfg.BridgeName, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", c.gateway, ones), "dev", c.cfg.BridgeName},
		{"link", "set", c.cfg.BridgeName, "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// writeConfig writes config.toml and the CNI network list.
func (c *Containerd) writeConfig() error {
	// restrict_oom_score_adj: root in this machine kind lacks CAP_SYS_RESOURCE, and runc fails with
	// "can't get final child's PID from pipe" when told to lower a score. The netns of pods go under
	// state/ (not the host's /var/run/netns), stream_server_port 0 picks a free port per instance.
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q

[ttrpc]
  address = ""

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[5]q
    conf_dir = %[6]q
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
`, c.path("root"), c.path("state"), c.Socket(), c.cfg.SandboxImage, c.cfg.CNIBinDir, c.path("cni", "net.d"))
	if err := os.WriteFile(c.path("config.toml"), []byte(config), 0o600); err != nil {
		return fmt.Errorf("writing containerd's config: %w", err)
	}
	ones, _ := c.subnet.Mask.Size()
	conflist := map[string]any{
		"cniVersion": "1.0.0",
		"name":       c.cfg.BridgeName,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": c.cfg.BridgeName, "isGateway": true,
				// No masquerade: nothing leaves this machine, and no iptables rule is needed.
				"ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": fmt.Sprintf("%s/%d", c.subnet.IP, ones), "gateway": c.gateway.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": c.path("cni", "ipam"),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conflist, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.path("cni", "net.d", "10-"+c.cfg.BridgeName+".conflist"), data, 0o600); err != nil {
		return fmt.Errorf("writing the CNI configuration: %w", err)
	}
	return nil
}

func (c *Containerd) criClient(ctx context.Context) (runtimeapi.RuntimeServiceClient, func(), error) {
	conn, err := grpc.NewClient("unix://"+c.Socket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dialling containerd of %s: %w", c.cfg.Name, err)
	}
	return runtimeapi.NewRuntimeServiceClient(conn), func() { _ = conn.Close() }, nil
}

// waitCRI waits until the CRI runtime reports ready (its network too: the CNI config is read).
func (c *Containerd) waitCRI(ctx context.Context) error {
	client, closeConn, err := c.criClient(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if done, exitErr := c.proc.Exited(); done {
			return false, fmt.Errorf("containerd exited: %v", exitErr)
		}
		resp, err := client.Status(ctx, &runtimeapi.StatusRequest{})
		if err != nil {
			last = err
			return false, nil
		}
		for _, cond := range resp.GetStatus().GetConditions() {
			if !cond.GetStatus() {
				last = fmt.Errorf("%s: %s %s", cond.GetType(), cond.GetReason(), cond.GetMessage())
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for containerd of %s (last: %v): %w\n--- tail of %s ---\n%s", c.cfg.Name, last, err, c.LogPath(), c.proc.LogTail())
	}
	return nil
}

// removeSandboxes stops and removes every pod sandbox through CRI, so that CNI tears down each
// pod's veth, address and port mappings.
func (c *Containerd) removeSandboxes(ctx context.Context) error {
	client, closeConn, err := c.criClient(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	resp, err := client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("listing the pod sandboxes of %s: %w", c.cfg.Name, err)
	}
	var errs []error
	for _, sb := range resp.GetItems() {
		if _, err := client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("stopping sandbox %s (%s): %w", sb.GetId(), sb.GetMetadata().GetName(), err))
			continue
		}
		if _, err := client.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox %s (%s): %w", sb.GetId(), sb.GetMetadata().GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// Stop removes every pod sandbox (through CRI, so CNI cleans up), stops containerd, and removes
// what is left: shims and their containers, mounts under Dir, network namespaces, veths and the
// bridge, and containerd's root and state. The logs stay. Safe to call more than once and on a
// partly started Containerd.
func (c *Containerd) Stop(ctx context.Context) error {
	var errs []error
	if c.proc != nil {
		if done, _ := c.proc.Exited(); !done {
			if err := c.removeSandboxes(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := c.proc.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := SweepContainerd(ctx, c.cfg.Dir, c.cfg.BridgeName); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SweepContainerd removes what a containerd started with this dir and bridge left on the host,
// even when its process is gone (a killed test): the shims serving its socket and the processes of
// their containers, every mount under dir, the bridge and its veths, and root/ and state/.
func SweepContainerd(ctx context.Context, dir, bridge string) error {
	var errs []error
	socket := filepath.Join(dir, "containerd.sock")
	if err := killShims(socket); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if linkExists(bridge) {
		for _, veth := range linksOfMaster(bridge) {
			if err := run(ctx, "ip", "link", "delete", veth); err != nil && linkExists(veth) {
				errs = append(errs, err)
			}
		}
		if err := run(ctx, "ip", "link", "delete", bridge); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range []string{"root", "state", "containerd.sock"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killShims kills every containerd-shim whose command line names socket, and the processes they
// started (the containers), found through /proc.
func killShims(socket string) error {
	procs, err := listProcs()
	if err != nil {
		return err
	}
	var shims []int
	for pid, argv := range procs {
		if len(argv) > 0 && strings.Contains(filepath.Base(argv[0]), "containerd-shim") && containsArg(argv, socket) {
			shims = append(shims, pid)
		}
	}
	for _, shim := range shims {
		for _, child := range descendants(shim) {
			killPID(child)
		}
		killPID(shim)
	}
	return nil
}

func containsArg(argv []string, want string) bool {
	for _, a := range argv {
		if a == want {
			return true
		}
	}
	return false
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// linksOfMaster lists the interfaces enslaved to a bridge (the pods' veths).
func linksOfMaster(bridge string) []string {
	entries, err := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
