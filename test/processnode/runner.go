package processnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/netns"
)

// RunnerOptions say where a node's processes live and what they can see.
type RunnerOptions struct {
	Images  ImageTable
	Objects ObjectSource
	// NodeRoot is this node's directory: hostPath volumes live under NodeRoot/host, pods'
	// emptyDirs under NodeRoot/pods/<uid>, logs under LogDir.
	NodeRoot string
	LogDir   string
	// PodIP and HostIP are the node's loopback address.
	PodIP, HostIP string
	// GracePeriod bounds SIGTERM before SIGKILL; default 5s.
	GracePeriod time.Duration
	// RestartBackoff is the first restart delay (doubling, at most 30s); default 200ms. Failed
	// volume setups are retried with the same backoff.
	RestartBackoff time.Duration
	// Tokens mints the tokens of projected serviceAccountToken volumes; a pod with such a volume
	// cannot start without it.
	Tokens TokenSource
	// ClusterHosts returns /etc/hosts lines for the cluster's service names (e.g.
	// "127.0.100.10 gm.sedna gm.sedna.svc gm.sedna.svc.cluster.local\n"), appended to every pod's
	// hosts file and polled every 2s while the pod runs; it is called from every pod's goroutines,
	// so it must be safe for concurrent use. Optional.
	ClusterHosts func() string
	// IsolateHosts runs every container in its own mount namespace (through unshare and mount)
	// with the pod's hosts file bind-mounted over /etc/hosts and a root directory of its own made
	// of its volumeMounts, readOnly ones read-only, into which the paths it is told are rewritten
	// (see the package doc). False runs containers as plain processes that see the machine's
	// /etc/hosts and the volumes' directories, writable whatever the pod says.
	IsolateHosts bool
	// NetNS, when set, is the file of the network namespace every container runs in (through
	// nsenter, outside the mount isolation). Empty: the machine's network.
	NetNS string
	// Logger receives background failures (token and hosts refreshes); default klog.Background().
	Logger klog.Logger
}

// RunningPod is a pod whose containers run as local processes.
type RunningPod struct {
	pod  *corev1.Pod
	opts RunnerOptions

	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	phase      corev1.PodPhase
	message    string
	init       []corev1.ContainerStatus
	containers []corev1.ContainerStatus
	processes  map[string]*os.Process
	startTime  metav1.Time
}

// StartPod runs pod's init containers to completion, then its containers, honouring
// restartPolicy. Containers see volumes through their paths rewritten to the node's directories.
func StartPod(pod *corev1.Pod, opts RunnerOptions) (*RunningPod, error) {
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = 5 * time.Second
	}
	if opts.RestartBackoff <= 0 {
		opts.RestartBackoff = 200 * time.Millisecond
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = klog.Background()
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &RunningPod{
		pod: pod.DeepCopy(), opts: opts, cancel: cancel, done: make(chan struct{}),
		phase: corev1.PodPending, processes: map[string]*os.Process{}, startTime: metav1.Now(),
	}
	p.pod.Status.PodIP, p.pod.Status.HostIP = opts.PodIP, opts.HostIP
	for _, c := range pod.Spec.InitContainers {
		p.init = append(p.init, waitingStatus(c))
	}
	for _, c := range pod.Spec.Containers {
		p.containers = append(p.containers, waitingStatus(c))
	}
	if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
		cancel()
		return nil, fmt.Errorf("creating the log directory: %w", err)
	}
	go p.run(ctx)
	return p, nil
}

func waitingStatus(c corev1.Container) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}
}

// dataPathPrefixEnv is Sedna's convention for host paths in workers: a hostPath P is mounted at
// DATA_PATH_PREFIX+P, and a worker reports a file's host path by stripping the prefix.
const dataPathPrefixEnv = "DATA_PATH_PREFIX"

// hostPathsUnder reports whether every hostPath volume mounted under prefix is mounted at
// prefix+<its host path>. Then the prefix stands for the host's / , which on this node is
// NodeRoot/host: rewriting the variable keeps "strip the prefix" yielding host paths, which is
// what the LC resolves under its rootfs.
func hostPathsUnder(pod *corev1.Pod, mounts []corev1.VolumeMount, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return false
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = filepath.Clean("/" + v.HostPath.Path)
		}
	}
	found := false
	for _, m := range mounts {
		path, ok := hostPaths[m.Name]
		if !ok || !(m.MountPath == prefix || strings.HasPrefix(m.MountPath, prefix+"/")) {
			continue
		}
		if filepath.Clean(m.MountPath) != filepath.Clean(prefix+path) || m.SubPath != "" {
			return false
		}
		found = true
	}
	return found
}

func (p *RunningPod) run(ctx context.Context) {
	defer close(p.done)
	// Token and hosts refreshes live as long as the pod's processes, not until Stop: a finished
	// pod's files stay as they were.
	background, stopBackground := context.WithCancel(ctx)
	var refreshers sync.WaitGroup
	defer func() {
		stopBackground()
		refreshers.Wait()
	}()
	volumes, ok := p.prepare(ctx, background, &refreshers)
	if !ok {
		p.finish(corev1.PodFailed, "stopped")
		return
	}
	for i, c := range p.pod.Spec.InitContainers {
		code, err := p.runContainer(ctx, c, volumes, &p.init[i])
		if err != nil || code != 0 {
			p.finish(corev1.PodFailed, fmt.Sprintf("init container %s failed: exit %d %v", c.Name, code, err))
			return
		}
	}
	p.setPhase(corev1.PodRunning)
	var wg sync.WaitGroup
	results := make([]int, len(p.pod.Spec.Containers))
	for i, c := range p.pod.Spec.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.superviseContainer(ctx, c, volumes, i)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		p.finish(corev1.PodFailed, "stopped")
		return
	}
	for _, code := range results {
		if code != 0 {
			p.finish(corev1.PodFailed, "a container failed")
			return
		}
	}
	p.finish(corev1.PodSucceeded, "")
}

// prepare writes the pod's hosts file and volumes before any container starts, retrying a failed
// setup (a ConfigMap not created yet, say) with backoff as the kubelet does, and starts the
// refreshers. It returns false if ctx ends first.
func (p *RunningPod) prepare(ctx, background context.Context, refreshers *sync.WaitGroup) (map[string]string, bool) {
	backoff := p.opts.RestartBackoff
	for {
		volumes, tokens, hosts, err := p.setUp(ctx)
		if err == nil {
			for _, token := range tokens {
				refreshers.Go(func() { p.refreshToken(background, token) })
			}
			if p.opts.ClusterHosts != nil {
				refreshers.Go(func() { p.refreshHosts(background, hosts) })
			}
			return volumes, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		p.setAllWaiting("CreateContainerConfigError", err.Error())
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// setUp writes the pod's hosts file and volumes; it returns the volumes' directories, the tokens
// to refresh and the hosts file's content.
func (p *RunningPod) setUp(ctx context.Context) (map[string]string, []*projectedToken, []byte, error) {
	podDir := filepath.Join(p.opts.NodeRoot, "pods", string(p.pod.UID))
	if err := os.MkdirAll(podDir, 0o755); err != nil {
		return nil, nil, nil, fmt.Errorf("creating the pod directory: %w", err)
	}
	if canDropPrivileges() {
		if err := ensureTraversable(podDir); err != nil {
			return nil, nil, nil, err
		}
	}
	hosts := hostsContent(p.pod, p.opts.PodIP, p.clusterHosts())
	if err := writeHosts(p.hostsPath(), hosts); err != nil {
		return nil, nil, nil, err
	}
	volumes, tokens, err := p.setUpVolumes(ctx)
	return volumes, tokens, hosts, err
}

// superviseContainer runs a container and restarts it as restartPolicy says; it returns the last
// exit code.
func (p *RunningPod) superviseContainer(ctx context.Context, c corev1.Container, volumes map[string]string, i int) int {
	backoff := p.opts.RestartBackoff
	for {
		code, err := p.runContainer(ctx, c, volumes, &p.containers[i])
		if ctx.Err() != nil {
			return code
		}
		policy := p.pod.Spec.RestartPolicy
		if policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && code == 0 && err == nil) {
			return code
		}
		select {
		case <-ctx.Done():
			return code
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		p.mu.Lock()
		p.containers[i].RestartCount++
		p.mu.Unlock()
	}
}

// containerTmpDir gives the container a temporary directory of its own, as the /tmp of its image's
// writable layer is, and points TMPDIR (which Go's os.TempDir and Python's tempfile read) at it,
// unless the container sets TMPDIR itself. It is not the machine's /tmp, which other containers
// (and earlier runs, as other users) share. Isolated, it is /tmp inside the container's root: a
// volume mounted at /tmp replaces it, and with readOnlyRootFilesystem it refuses writes, as on a
// node. It returns the directory to create before the container starts ("" when TMPDIR is the
// container's).
func (p *RunningPod) containerTmpDir(c *corev1.Container, paths pathMap, env map[string]string) string {
	if _, set := env["TMPDIR"]; set {
		return ""
	}
	dir := filepath.Join(p.opts.NodeRoot, "pods", string(p.pod.UID), "tmp", c.Name)
	if paths.root != "" {
		dir = filepath.Join(paths.root, "tmp")
	}
	env["TMPDIR"] = dir
	return dir
}

// makeTmpDir creates dir world-writable with the sticky bit, as /tmp is; fresh empties it first (an
// isolated container's root is already new at every start).
func makeTmpDir(dir string, fresh bool) error {
	if dir == "" {
		return nil
	}
	if fresh {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("clearing the container's temporary directory: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the container's temporary directory: %w", err)
	}
	if err := os.Chmod(dir, 0o1777); err != nil {
		return fmt.Errorf("creating the container's temporary directory: %w", err)
	}
	return nil
}

// runContainer starts one process and waits for it, keeping status up to date.
func (p *RunningPod) runContainer(ctx context.Context, c corev1.Container, volumes map[string]string, status *corev1.ContainerStatus) (int, error) {
	_, env, err := ResolveEnv(p.pod, &c, p.opts.Objects)
	if err != nil {
		p.setWaiting(status, "CreateContainerConfigError", err.Error())
		return -1, err
	}
	mounts, err := subPaths(c.VolumeMounts, volumes, env)
	if err != nil {
		p.setWaiting(status, "CreateContainerConfigError", err.Error())
		return -1, err
	}
	paths := pathMap{mounts: mounts, volumes: volumes}
	if p.opts.IsolateHosts {
		paths.root = p.containerRootPath(c.Name)
	}
	for name, v := range env {
		env[name] = paths.rewrite(v)
	}
	if prefix, ok := env[dataPathPrefixEnv]; ok && paths.root == "" && hostPathsUnder(p.pod, mounts, prefix) {
		// Isolated, the prefix is a directory above the mounts and is already in the root.
		env[dataPathPrefixEnv] = filepath.Join(p.opts.NodeRoot, "host")
	}
	tmpDir := p.containerTmpDir(&c, paths, env)
	argv, err := Command(&c, p.opts.Images, env)
	if err != nil {
		p.setWaiting(status, "ErrImageNeverPull", err.Error())
		return -1, err
	}
	var envList []string
	for name, v := range env {
		envList = append(envList, name+"="+v)
	}
	for j := range argv[1:] {
		argv[j+1] = paths.rewrite(argv[j+1])
	}
	var id *identity
	if canDropPrivileges() {
		cid := containerIdentity(p.pod, &c)
		id = &cid
	}
	if p.opts.IsolateHosts {
		iso, err := p.newIsolation(&c, paths)
		if err == nil {
			iso.identity = id
			argv, err = iso.wrap(argv)
		}
		if err != nil {
			p.setWaiting(status, "RunContainerError", err.Error())
			return -1, err
		}
	}
	if id != nil && !p.opts.IsolateHosts {
		// Isolated, the mount script becomes the user with setpriv once its mounts are in place;
		// plain, setpriv does it alone.
		argv, err = id.wrap(argv)
		if err != nil {
			p.setWaiting(status, "RunContainerError", err.Error())
			return -1, err
		}
	}
	if err := makeTmpDir(tmpDir, paths.root == ""); err != nil {
		p.setWaiting(status, "RunContainerError", err.Error())
		return -1, err
	}
	// nsenter needs root: it wraps whatever becomes the container's user.
	if p.opts.NetNS != "" {
		if argv, err = netns.Command(p.opts.NetNS, argv); err != nil {
			p.setWaiting(status, "RunContainerError", err.Error())
			return -1, fmt.Errorf("entering the node's network namespace: %w", err)
		}
	}
	logPath := filepath.Join(p.opts.LogDir, fmt.Sprintf("%s_%s_%s.log", p.pod.Namespace, p.pod.Name, c.Name))
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.setWaiting(status, "RunContainerError", err.Error())
		return -1, fmt.Errorf("opening %s: %w", logPath, err)
	}
	defer func() { _ = logFile.Close() }() // process output is flushed by the OS
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), envList...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = filepath.Join(p.opts.NodeRoot, "pods", string(p.pod.UID))
	if err := os.MkdirAll(cmd.Dir, 0o755); err != nil {
		return -1, err
	}
	cmd.SysProcAttr = containerProcAttr()
	if err := cmd.Start(); err != nil {
		p.setWaiting(status, "RunContainerError", err.Error())
		return -1, fmt.Errorf("starting container %s: %w", c.Name, err)
	}
	p.mu.Lock()
	p.processes[c.Name] = cmd.Process
	status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	status.Ready, status.Started = true, ptrTrue()
	p.mu.Unlock()

	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	var werr error
	group := -cmd.Process.Pid
	select {
	case werr = <-waitErr:
	case <-ctx.Done():
		_ = syscall.Kill(group, syscall.SIGTERM)
		deadline := time.After(p.opts.GracePeriod)
		select {
		case werr = <-waitErr:
		case <-deadline:
			_ = syscall.Kill(group, syscall.SIGKILL)
			werr = <-waitErr
		}
		// The main process is gone; children that ignored SIGTERM get the rest of the grace period.
		for syscall.Kill(group, 0) == nil {
			select {
			case <-deadline:
				_ = syscall.Kill(group, syscall.SIGKILL)
			case <-time.After(50 * time.Millisecond):
				continue
			}
			break
		}
	}
	// A container's processes end with it, as they do with a container's PID namespace: whatever
	// the main process left running in its group is killed.
	_ = syscall.Kill(group, syscall.SIGKILL)
	code := 0
	var exitErr *exec.ExitError
	if errors.As(werr, &exitErr) {
		code = exitErr.ExitCode()
		if code < 0 {
			code = 137
		}
	}
	p.mu.Lock()
	delete(p.processes, c.Name)
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	status.LastTerminationState = status.State
	status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: reason, FinishedAt: metav1.Now()}}
	status.Ready = false
	p.mu.Unlock()
	return code, nil
}

func ptrTrue() *bool { t := true; return &t }

func (p *RunningPod) setWaiting(status *corev1.ContainerStatus, reason, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
}

// setAllWaiting marks every container as waiting, as while the pod's volumes cannot be set up.
func (p *RunningPod) setAllWaiting(reason, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, statuses := range [][]corev1.ContainerStatus{p.init, p.containers} {
		for i := range statuses {
			statuses[i].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
		}
	}
}

// subPaths returns the container's mounts with subPathExpr expanded into subPath, creating a
// missing subPath as a directory as the kubelet does.
func subPaths(mounts []corev1.VolumeMount, volumes map[string]string, env map[string]string) ([]corev1.VolumeMount, error) {
	out := make([]corev1.VolumeMount, 0, len(mounts))
	for _, m := range mounts {
		if m.SubPathExpr != "" {
			m.SubPath, m.SubPathExpr = Expand(m.SubPathExpr, env), ""
		}
		dir, ok := volumes[m.Name]
		if m.SubPath != "" && ok {
			if !filepath.IsLocal(m.SubPath) {
				return nil, fmt.Errorf("volumeMount %s: subPath %q must be relative and stay inside the volume", m.Name, m.SubPath)
			}
			path := filepath.Join(dir, m.SubPath)
			if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(path, 0o755); err != nil {
					return nil, fmt.Errorf("volumeMount %s: creating subPath: %w", m.Name, err)
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

func (p *RunningPod) setPhase(phase corev1.PodPhase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = phase
}

func (p *RunningPod) finish(phase corev1.PodPhase, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.message = phase, message
}

// Status is the pod's status as a kubelet would report it.
func (p *RunningPod) Status() corev1.PodStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	ready := p.phase == corev1.PodRunning
	for _, c := range p.containers {
		ready = ready && c.Ready
	}
	readyStatus := corev1.ConditionFalse
	if ready {
		readyStatus = corev1.ConditionTrue
	}
	return corev1.PodStatus{
		Phase: p.phase, Message: p.message, PodIP: p.opts.PodIP, HostIP: p.opts.HostIP,
		PodIPs: []corev1.PodIP{{IP: p.opts.PodIP}}, StartTime: &p.startTime,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: readyStatus},
			{Type: corev1.ContainersReady, Status: readyStatus},
		},
		InitContainerStatuses: append([]corev1.ContainerStatus(nil), p.init...),
		ContainerStatuses:     append([]corev1.ContainerStatus(nil), p.containers...),
	}
}

// Stop ends every process of the pod (SIGTERM, then SIGKILL after the grace period) and waits.
func (p *RunningPod) Stop() {
	p.cancel()
	<-p.done
}

// Done is closed when the pod's processes have all ended.
func (p *RunningPod) Done() <-chan struct{} { return p.done }

// containerProcAttr is how a container's process starts: in its own process group, to stop the
// worker's children with it, and killed (SIGKILL, sent by the kernel) if this harness dies
// without stopping its pods; the signal survives the unshare/sh/exec chain and, through
// setpriv's --pdeathsig=keep, the change to the container's user.
func containerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
