package processnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// podSyncWorkers bounds concurrent create/delete calls; DeletePod blocks for up to a pod's grace
// period, so one worker would serialize deletions.
const podSyncWorkers = 4

// NodeOptions describe one process node.
type NodeOptions struct {
	Name   string
	Labels map[string]string
	// IP is the node's own loopback address (e.g. 127.0.1.1); its pods get it as podIP and hostIP.
	IP string
	// Root is the node's directory (RunnerOptions.NodeRoot); container logs go to Root/logs.
	Root   string
	Images ImageTable
	// KubeletPort serves `kubectl logs` on IP (DefaultKubeletPort when zero; negative disables).
	KubeletPort int
	// ClusterHosts returns /etc/hosts lines for the cluster's service names, added to every pod's
	// hosts file (see RunnerOptions.ClusterHosts). Optional.
	ClusterHosts func() string
	// IsolateHosts runs every container in its own mount namespace, with its pod's hosts file and
	// its volumeMounts enforced (see RunnerOptions.IsolateHosts).
	IsolateHosts bool
	// NetNS, when set, is the file of the network namespace the node lives in (test/netns): its
	// containers run in it and the kubelet API listens in it, on IP, which is an address of the
	// namespace. Empty: the machine's network.
	NetNS string
	// ObjectClient, when set, is the client the Secrets, ConfigMaps and volume claims of the
	// node's pods are read with: a stand-in for the node's local cache of them (KubeEdge's
	// MetaManager, the kubelet's watch-based managers), which still answers while the node is
	// cut off, so containers restart offline as on a real node. Nil: the node's client.
	ObjectClient kubernetes.Interface
}

func (o NodeOptions) logDir() string { return filepath.Join(o.Root, "logs") }

func (o NodeOptions) validate() error {
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("a node name is required"))
	}
	if net.ParseIP(o.IP) == nil {
		errs = append(errs, fmt.Errorf("node IP %q is not an IP address", o.IP))
	}
	if o.Root == "" {
		errs = append(errs, errors.New("a node root directory is required"))
	}
	return errors.Join(errs...)
}

// nodeCapacity matches localcluster's API-only nodes: generous, because pods are processes that
// share this machine rather than isolated containers.
var nodeCapacity = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("8"),
	corev1.ResourceMemory: resource.MustParse("16Gi"),
	corev1.ResourcePods:   resource.MustParse("110"),
}

// nodeStatusUpdateInterval is how often the node writes its status (the kubelet's
// nodeStatusUpdateFrequency); its Lease is renewed every 10 s as well.
const nodeStatusUpdateInterval = 10 * time.Second

// RunNode registers the node (with a lease heartbeat, a Ready condition and the given labels) and
// runs the pods bound to it as local processes until ctx ends; then it stops every pod's processes
// before returning. It returns early with an error if the node or pod controller fails.
func RunNode(ctx context.Context, client kubernetes.Interface, opts NodeOptions) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("invalid node options: %w", err)
	}
	logger := klog.FromContext(ctx).WithValues("node", opts.Name)
	ctx = klog.NewContext(ctx, logger)
	ctx = vklog.WithLogger(ctx, vkLogger{logger: logger})
	// Cancelled before the deferred shutdowns below run, which wait for goroutines bound to ctx.
	ctx, cancel := context.WithCancel(ctx)

	if opts.KubeletPort == 0 {
		opts.KubeletPort = DefaultKubeletPort
	}
	if opts.KubeletPort > 0 {
		stopAPI, err := serveKubeletAPI(ctx, opts)
		if err != nil {
			cancel()
			return err
		}
		defer stopAPI()
	}
	podFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", opts.Name).String()
	}))
	provider := newPodProvider(ctx, client, podFactory.Core().V1().Pods().Lister(), opts)
	// Runs last: after the controllers have stopped, no new pod can start behind our back.
	defer provider.stopAll()
	defer provider.pollers.Wait()

	nodeController, err := node.NewNodeController(node.NaiveNodeProvider{}, nodeObject(opts), client.CoreV1().Nodes(),
		node.WithNodeEnableLeaseV1(client.CoordinationV1().Leases(corev1.NamespaceNodeLease), node.DefaultLeaseDuration),
		// The kubelet's node status update frequency: a node the lifecycle controller marked
		// Ready Unknown while it was cut off reports Ready again within 10 s of the heal.
		node.WithNodeStatusUpdateInterval(nodeStatusUpdateInterval))
	if err != nil {
		cancel()
		return fmt.Errorf("creating the node controller: %w", err)
	}

	// The pod controller insists on these informers for its downward-API resolution, which this
	// node does not use (the runner resolves environments); they are started all the same so the
	// controller's listers are valid.
	resourceFactory := informers.NewSharedInformerFactory(client, 0)
	defer resourceFactory.Shutdown()
	defer podFactory.Shutdown()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	// The returned watch ends with broadcaster.Shutdown.
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer cancel()

	podController, err := node.NewPodController(node.PodControllerConfig{
		PodClient:                 client.CoreV1(),
		PodInformer:               podFactory.Core().V1().Pods(),
		EventRecorder:             broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "processnode", Host: opts.Name}),
		Provider:                  provider,
		ConfigMapInformer:         resourceFactory.Core().V1().ConfigMaps(),
		SecretInformer:            resourceFactory.Core().V1().Secrets(),
		ServiceInformer:           resourceFactory.Core().V1().Services(),
		SkipDownwardAPIResolution: true, // status.podIP is only known to the runner
	})
	if err != nil {
		return fmt.Errorf("creating the pod controller: %w", err)
	}
	podFactory.Start(ctx.Done())
	resourceFactory.Start(ctx.Done())

	nodeDone := make(chan error, 1)
	go func() { nodeDone <- nodeController.Run(ctx) }()
	select {
	case <-nodeController.Ready():
		logger.V(2).Info("Registered node", "ip", opts.IP)
	case err := <-nodeDone:
		return fmt.Errorf("registering node %s: %w", opts.Name, err)
	case <-ctx.Done():
		<-nodeDone //nolint:errcheck // ctx ended: the controller's error is only the cancellation
		return nil
	}

	podsDone := make(chan error, 1)
	go func() { podsDone <- podController.Run(ctx, podSyncWorkers) }()
	var runErr error
	select {
	case err := <-nodeDone:
		nodeDone <- err // read again below
		if err != nil {
			runErr = fmt.Errorf("node controller of %s: %w", opts.Name, err)
		}
	case err := <-podsDone:
		podsDone <- err
		if err != nil {
			runErr = fmt.Errorf("pod controller of %s: %w", opts.Name, err)
		}
	case <-ctx.Done():
	}
	cancel()
	// Both controllers end on cancellation; their errors after that are only shutdown noise.
	<-nodeDone //nolint:errcheck // see above
	<-podsDone //nolint:errcheck // see above
	logger.V(2).Info("Stopping node")
	return runErr
}

// nodeObject is the Node a kubelet would register: the well-known labels nodeSelectors and
// DaemonSets rely on, a Ready condition, and the node's loopback address.
func nodeObject(opts NodeOptions) *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:   opts.Name,
		corev1.LabelOSStable:   "linux",
		corev1.LabelArchStable: runtime.GOARCH,
	}
	for k, v := range opts.Labels {
		labels[k] = v
	}
	now := metav1.Now()
	condition := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: opts.Name, Labels: labels},
		Status: corev1.NodeStatus{
			Capacity:    nodeCapacity.DeepCopy(),
			Allocatable: nodeCapacity.DeepCopy(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: opts.IP},
				{Type: corev1.NodeHostName, Address: opts.Name},
			},
			Conditions: []corev1.NodeCondition{
				condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
				condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
				condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
				condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
			},
			NodeInfo:        corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: runtime.GOARCH},
			Phase:           corev1.NodeRunning,
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(max(opts.KubeletPort, 0))}},
		},
	}
}
