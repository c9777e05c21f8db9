package processnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
)

// statusPollInterval is how often running pods' statuses are compared with what was last reported.
// The runner has no change notification; half a second keeps restarts and exits visible promptly
// without measurable load.
const statusPollInterval = 500 * time.Millisecond

// statusResyncInterval is how often the statuses the API server holds are compared with the
// pods' own, as the kubelet's status manager does: another writer (the node lifecycle controller
// marks the pods of a node it lost not ready) or a write lost while the node was cut off is put
// right within this period.
const statusResyncInterval = 10 * time.Second

// podProvider runs the pods bound to one node as local processes for virtual-kubelet's pod
// controller.
type podProvider struct {
	client kubernetes.Interface
	opts   NodeOptions
	// objects serves the containers' environment references for as long as the node runs: the
	// runner resolves them again on every restart, long after CreatePod has returned.
	objects ObjectSource
	tokens  TokenSource
	// apiPods is the node's view of its pods in the API server (nil: statuses are not resynced).
	apiPods corelisters.PodLister

	mu   sync.Mutex
	pods map[types.NamespacedName]*podEntry

	// pollers tracks the status poller, so that shutdown can wait for it before stopping pods.
	pollers sync.WaitGroup
}

var (
	_ node.PodLifecycleHandler = (*podProvider)(nil)
	_ node.PodNotifier         = (*podProvider)(nil)
)

// podEntry is one pod known to the provider; all fields are guarded by podProvider.mu.
type podEntry struct {
	pod     *corev1.Pod // the latest spec and metadata handed to CreatePod/UpdatePod
	running *RunningPod
	// runnerStatus is the runner's last raw status, to notice changes; status is what we report,
	// with condition transition times; notified is the status last pushed to the pod controller.
	runnerStatus corev1.PodStatus
	status       corev1.PodStatus
	notified     *corev1.PodStatus
}

// newPodProvider returns a provider whose containers read Secrets and ConfigMaps within ctx, the
// node's lifetime, and whose statuses are resynced against apiPods (nil: not resynced).
func newPodProvider(ctx context.Context, client kubernetes.Interface, apiPods corelisters.PodLister, opts NodeOptions) *podProvider {
	objects := opts.ObjectClient
	if objects == nil {
		objects = client
	}
	return &podProvider{
		client: client, opts: opts, objects: apiObjects{ctx: ctx, client: objects}, tokens: apiTokens{client: client}, apiPods: apiPods,
		pods: map[types.NamespacedName]*podEntry{},
	}
}

func keyOf(pod *corev1.Pod) types.NamespacedName {
	return types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
}

// CreatePod starts the pod's processes. Environment references are resolved by the runner, not by
// virtual-kubelet, because status.podIP is only known here.
func (p *podProvider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	logger := klog.FromContext(ctx)
	key := keyOf(pod)
	p.mu.Lock()
	if entry, ok := p.pods[key]; ok && entry.pod.UID == pod.UID {
		p.mu.Unlock()
		return nil // a retried create after the first one started the pod
	}
	p.mu.Unlock()

	gracePeriod := 5 * time.Second
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil {
		// Zero asks for an immediate kill; the runner treats a zero duration as "use the default".
		gracePeriod = max(time.Duration(*s)*time.Second, time.Millisecond)
	}
	running, err := StartPod(pod, RunnerOptions{
		Images:       p.opts.Images,
		Objects:      p.objects,
		Tokens:       p.tokens,
		NodeRoot:     p.opts.Root,
		LogDir:       p.opts.logDir(),
		PodIP:        p.opts.IP,
		HostIP:       p.opts.IP,
		GracePeriod:  gracePeriod,
		ClusterHosts: p.opts.ClusterHosts,
		IsolateHosts: p.opts.IsolateHosts,
		NetNS:        p.opts.NetNS,
		Logger:       logger,
	})
	if err != nil {
		return fmt.Errorf("starting pod %s: %w", key, err)
	}
	p.mu.Lock()
	previous := p.pods[key]
	entry := &podEntry{pod: pod.DeepCopy(), running: running}
	p.refreshLocked(entry)
	p.pods[key] = entry
	p.mu.Unlock()
	if previous != nil {
		// A pod of the same name but another UID: the old one was deleted while we missed it.
		previous.running.Stop()
	}
	logger.V(2).Info("Started pod", "pod", klog.KObj(pod), "uid", pod.UID)
	return nil
}

// UpdatePod records the pod's new metadata and spec. The fields a pod may change after creation
// (labels, annotations, images, activeDeadlineSeconds, tolerations) are not acted on: processes
// are not restarted for an image change, which the harness's image table would map to the same
// binary anyway.
func (p *podProvider) UpdatePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	entry, ok := p.pods[keyOf(pod)]
	if !ok || entry.pod.UID != pod.UID {
		return errdefs.NotFoundf("pod %s is not running on this node", keyOf(pod))
	}
	status := entry.pod.Status
	entry.pod = pod.DeepCopy()
	entry.pod.Status = status
	return nil
}

// DeletePod stops the pod's processes and then, like the kubelet once a pod's containers have
// terminated, removes the pod object with a zero grace period. Without that last step the pod
// controller would only force-delete it when the whole grace period has passed.
func (p *podProvider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	logger := klog.FromContext(ctx)
	key := keyOf(pod)
	p.mu.Lock()
	entry, ok := p.pods[key]
	if ok && entry.pod.UID == pod.UID {
		delete(p.pods, key)
	}
	p.mu.Unlock()
	if !ok || entry.pod.UID != pod.UID {
		return errdefs.NotFoundf("pod %s is not running on this node", key)
	}
	entry.running.Stop()
	logger.V(2).Info("Stopped pod", "pod", klog.KObj(pod), "uid", pod.UID)
	if pod.DeletionTimestamp == nil {
		return nil // removed from the node only (it vanished from the API server); nothing to confirm
	}
	err := p.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		// The UID guards against deleting a pod of the same name created since.
		Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("confirming the deletion of pod %s: %w", key, err)
	}
	return nil
}

// GetPod returns the pod with its current status.
func (p *podProvider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	entry, ok := p.pods[types.NamespacedName{Namespace: namespace, Name: name}]
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not running on this node", namespace, name)
	}
	p.refreshLocked(entry)
	return entry.podWithStatus(), nil
}

// GetPodStatus returns the pod's current status.
func (p *podProvider) GetPodStatus(_ context.Context, namespace, name string) (*corev1.PodStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	entry, ok := p.pods[types.NamespacedName{Namespace: namespace, Name: name}]
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not running on this node", namespace, name)
	}
	p.refreshLocked(entry)
	return entry.status.DeepCopy(), nil
}

// GetPods returns every pod the node runs, including those whose processes have ended.
func (p *podProvider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pods := make([]*corev1.Pod, 0, len(p.pods))
	for _, entry := range p.pods {
		p.refreshLocked(entry)
		pods = append(pods, entry.podWithStatus())
	}
	return pods, nil
}

// NotifyPods starts the status poller; it returns at once, as the pod controller requires.
func (p *podProvider) NotifyPods(ctx context.Context, notify func(*corev1.Pod)) {
	p.pollers.Add(1)
	go func() {
		defer p.pollers.Done()
		ticker := time.NewTicker(statusPollInterval)
		defer ticker.Stop()
		resync := time.NewTicker(statusResyncInterval)
		defer resync.Stop()
		for {
			var pods []*corev1.Pod
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				pods = p.changedPods()
			case <-resync.C:
				pods = p.driftedPods()
			}
			// notify may block (it waits for the pod controller's cache), so it is called
			// without holding the lock.
			for _, pod := range pods {
				notify(pod)
			}
		}
	}()
}

// changedPods returns the pods whose status changed since it was last pushed, and marks them pushed.
func (p *podProvider) changedPods() []*corev1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	var changed []*corev1.Pod
	for _, entry := range p.pods {
		p.refreshLocked(entry)
		if entry.notified != nil && apiequality.Semantic.DeepEqual(*entry.notified, entry.status) {
			continue
		}
		entry.notified = entry.status.DeepCopy()
		changed = append(changed, entry.podWithStatus())
	}
	return changed
}

// driftedPods returns the pods whose status in the API server differs from the one last pushed
// in phase or in a condition's status, although nothing is waiting to be pushed.
func (p *podProvider) driftedPods() []*corev1.Pod {
	if p.apiPods == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var drifted []*corev1.Pod
	for key, entry := range p.pods {
		if entry.notified == nil || !apiequality.Semantic.DeepEqual(*entry.notified, entry.status) {
			continue // pushed by the next poll anyway
		}
		published, err := p.apiPods.Pods(key.Namespace).Get(key.Name)
		if err != nil || published.UID != entry.pod.UID || !statusDrifted(published.Status, entry.status) {
			continue
		}
		// With the API server's resourceVersion: virtual-kubelet ignores a notification equal to
		// the last one it got (and writes with the resourceVersion its own cache holds).
		pod := entry.podWithStatus()
		pod.ResourceVersion = published.ResourceVersion
		drifted = append(drifted, pod)
	}
	return drifted
}

// statusDrifted reports whether published differs from ours in phase or in the status of one
// of our conditions.
func statusDrifted(published, ours corev1.PodStatus) bool {
	if published.Phase != ours.Phase {
		return true
	}
	for _, c := range ours.Conditions {
		i := slices.IndexFunc(published.Conditions, func(pc corev1.PodCondition) bool { return pc.Type == c.Type })
		if i < 0 || published.Conditions[i].Status != c.Status {
			return true
		}
	}
	return false
}

// stopAll ends every pod's processes, waiting for all of them.
func (p *podProvider) stopAll() {
	p.mu.Lock()
	entries := make([]*podEntry, 0, len(p.pods))
	for key, entry := range p.pods {
		entries = append(entries, entry)
		delete(p.pods, key)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, entry := range entries {
		wg.Go(entry.running.Stop) // in parallel: each may wait out its grace period
	}
	wg.Wait()
}

// refreshLocked brings entry.status up to date with the runner. Condition transition times are
// kept while a condition's status holds, so that consumers such as the Deployment controller's
// minReadySeconds see when a pod became ready rather than when it was last polled.
func (p *podProvider) refreshLocked(entry *podEntry) {
	raw := entry.running.Status()
	if entry.status.Phase != "" && apiequality.Semantic.DeepEqual(raw, entry.runnerStatus) {
		return
	}
	entry.runnerStatus = *raw.DeepCopy()
	now := metav1.Now()
	status := raw
	initialized := corev1.ConditionFalse
	if raw.Phase != corev1.PodPending {
		initialized = corev1.ConditionTrue
	}
	conditions := append([]corev1.PodCondition{{Type: corev1.PodInitialized, Status: initialized}}, raw.Conditions...)
	// PodScheduled belongs to the scheduler; a status update must carry it over or erase it.
	for _, c := range entry.pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			conditions = append(conditions, c)
		}
	}
	for i := range conditions {
		c := &conditions[i]
		if !c.LastTransitionTime.IsZero() {
			continue
		}
		c.LastTransitionTime = now
		for _, previous := range entry.status.Conditions {
			if previous.Type == c.Type && previous.Status == c.Status {
				c.LastTransitionTime = previous.LastTransitionTime
			}
		}
	}
	status.Conditions = conditions
	entry.status = status
}

func (e *podEntry) podWithStatus() *corev1.Pod {
	pod := e.pod.DeepCopy()
	pod.Status = *e.status.DeepCopy()
	return pod
}

// apiObjects reads the Secrets and ConfigMaps a container's environment refers to straight from
// the API server: a pod starts rarely, and a fresh read sees objects created just before the pod.
type apiObjects struct {
	ctx    context.Context
	client kubernetes.Interface
}

func (o apiObjects) Secret(namespace, name string) (*corev1.Secret, error) {
	secret, err := o.client.CoreV1().Secrets(namespace).Get(o.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting secret %s/%s: %w", namespace, name, err)
	}
	return secret, nil
}

func (o apiObjects) ConfigMap(namespace, name string) (*corev1.ConfigMap, error) {
	cm, err := o.client.CoreV1().ConfigMaps(namespace).Get(o.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting configMap %s/%s: %w", namespace, name, err)
	}
	return cm, nil
}

func (o apiObjects) PersistentVolumeClaim(namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	claim, err := o.client.CoreV1().PersistentVolumeClaims(namespace).Get(o.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting persistentVolumeClaim %s/%s: %w", namespace, name, err)
	}
	return claim, nil
}

func (o apiObjects) PersistentVolume(name string) (*corev1.PersistentVolume, error) {
	volume, err := o.client.CoreV1().PersistentVolumes().Get(o.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting persistentVolume %s: %w", name, err)
	}
	return volume, nil
}

// apiTokens mints service-account tokens with the TokenRequest API, bound to the pod as the
// kubelet binds them: a TokenReview of one names the pod and, through the pod, its node.
type apiTokens struct {
	client kubernetes.Interface
}

var _ TokenSource = apiTokens{}

func (t apiTokens) CreateToken(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (string, time.Time, error) {
	serviceAccount := pod.Spec.ServiceAccountName
	if serviceAccount == "" {
		serviceAccount = "default"
	}
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &expirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if audience != "" {
		request.Spec.Audiences = []string{audience}
	}
	response, err := t.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, serviceAccount, request, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("requesting a token for service account %s/%s: %w", pod.Namespace, serviceAccount, err)
	}
	if response.Status.Token == "" {
		return "", time.Time{}, errors.New("the token request returned no token")
	}
	return response.Status.Token, response.Status.ExpirationTimestamp.Time, nil
}
