package serviceproxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/localcluster"
)

const (
	eventually = 30 * time.Second
	tick       = 100 * time.Millisecond
	nodeName   = "proxy-node"
)

// The control plane takes tens of seconds to start, so the tests that need it share one, started
// on first use and stopped by TestMain.
var shared struct {
	once    sync.Once
	dir     string
	cluster *localcluster.Cluster
	client  kubernetes.Interface
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cluster != nil {
		if err := shared.cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the local cluster:", err)
			code = 1
		}
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir) // a leftover temp dir is harmless
	}
	os.Exit(code)
}

func clusterClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	shared.once.Do(func() {
		if _, err := os.Stat(filepath.Join(localcluster.RepoRoot(), "_output", "bin", "kube-apiserver")); err != nil {
			shared.err = fmt.Errorf("control-plane binaries missing (run hack/install-test-binaries.sh): %w", err)
			return
		}
		shared.dir, shared.err = os.MkdirTemp("", "serviceproxy-test-")
		if shared.err != nil {
			return
		}
		ctx := context.Background()
		shared.cluster, shared.err = localcluster.Start(ctx, localcluster.Options{Dir: shared.dir})
		if shared.err != nil {
			return
		}
		shared.client, shared.err = kubernetes.NewForConfig(shared.cluster.Config)
		if shared.err != nil {
			return
		}
		shared.err = shared.cluster.AddNode(ctx, nodeName, nil)
	})
	require.NoError(t, shared.err)
	return shared.client
}

// startProxy runs a proxy for the length of the test.
func startProxy(t *testing.T, client kubernetes.Interface) (context.Context, *Proxy) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	proxy, err := Run(ctx, client, Options{DialTimeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		proxy.Wait()
	})
	return ctx, proxy
}

func createNamespace(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// hostIP is a non-loopback address of this machine: the apiserver rejects loopback addresses in
// EndpointSlices, so backends named in slices must listen on a real interface.
func hostIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, addr := range addrs {
		ipNet, ok := addr.(*net.IPNet)
		if !ok || ipNet.IP.To4() == nil || ipNet.IP.IsLoopback() || ipNet.IP.IsLinkLocalUnicast() {
			continue
		}
		return ipNet.IP.String()
	}
	t.Fatalf("no non-loopback IPv4 address on this machine among %v", addrs)
	return ""
}

func splitPort(t *testing.T, address string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(address)
	require.NoError(t, err)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	return int32(n)
}

func selectorlessService(name string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "web", Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9999),
		}}},
	}
}

// endpointSlice publishes the addresses (all on one port, as a slice requires) for service.
func endpointSlice(name, service string, port int32, addresses ...string) *discoveryv1.EndpointSlice {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("web"), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for _, address := range addresses {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{address}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
		})
	}
	return slice
}

// answers makes n requests to address and counts the answers; a failed request fails the round.
func answers(address string, n int) (map[string]int, error) {
	counts := map[string]int{}
	for range n {
		answer, err := request(address)
		if err != nil {
			return counts, err
		}
		counts[answer]++
	}
	return counts, nil
}

// requireAnswers waits until a round of requests to address is answered by exactly the given
// backends, each at least once; on timeout it reports the last round.
func requireAnswers(t *testing.T, address string, n int, backends ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, backend := range backends {
		want[backend+"\nping"] = true
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		counts, err := answers(address, n)
		if !assert.NoError(c, err, "requests to %s", address) {
			return
		}
		got := map[string]bool{}
		for answer := range counts {
			got[answer] = true
		}
		assert.Equal(c, want, got, "answers from %s (counts %v)", address, counts)
	}, eventually, tick)
}

func requireRefused(t *testing.T, address string) {
	t.Helper()
	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", address, time.Second)
		if err == nil {
			_ = conn.Close()
			return false
		}
		return true
	}, eventually, tick, "%s should stop accepting connections", address)
}

func hostsLine(clusterIP, namespace, name string) string {
	n := name + "." + namespace
	return fmt.Sprintf("%s %s %s.svc %s.svc.cluster.local\n", clusterIP, n, n, n)
}

// TestSelectorlessService drives a Service whose endpoints are EndpointSlices written by hand:
// round-robin across slices, failover past an endpoint that refuses, readiness, the hosts file and
// deletion.
func TestSelectorlessService(t *testing.T) {
	client := clusterClient(t)
	ctx, proxy := startProxy(t, client)
	const ns, name = "selectorless", "echo"
	createNamespace(ctx, t, client, ns)

	ip := hostIP(t)
	first := echoServer(t, net.JoinHostPort(ip, "0"), "first")
	second := echoServer(t, net.JoinHostPort(ip, "0"), "second")
	dead := unusedAddress(t, ip)

	svc, err := client.CoreV1().Services(ns).Create(ctx, selectorlessService(name, 8080), metav1.CreateOptions{})
	require.NoError(t, err)
	clusterIP := svc.Spec.ClusterIP
	require.True(t, net.ParseIP(clusterIP).IsLoopback(), "cluster IP %s is outside the loopback range", clusterIP)
	slices := client.DiscoveryV1().EndpointSlices(ns)
	for sliceName, address := range map[string]string{"echo-first": first, "echo-second": second, "echo-dead": dead} {
		_, err := slices.Create(ctx, endpointSlice(sliceName, name, splitPort(t, address), ip), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, proxy.WaitForService(ctx, ns, name))
	serviceAddress := net.JoinHostPort(clusterIP, "8080")

	// Three endpoints, one refusing: every connection still gets an answer, from both live ones.
	requireAnswers(t, serviceAddress, 6, "first", "second")

	notReady, err := slices.Get(ctx, "echo-second", metav1.GetOptions{})
	require.NoError(t, err)
	notReady.Endpoints[0].Conditions.Ready = ptr(false)
	_, err = slices.Update(ctx, notReady, metav1.UpdateOptions{})
	require.NoError(t, err)
	requireAnswers(t, serviceAddress, 6, "first")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		hosts := proxy.Hosts()
		assert.True(c, containsLine(hosts, hostsLine(clusterIP, ns, name)), "hosts should name the service; got:\n%s", hosts)
	}, eventually, tick)

	require.NoError(t, client.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}))
	requireRefused(t, serviceAddress)
	require.False(t, containsLine(proxy.Hosts(), hostsLine(clusterIP, ns, name)), "hosts:\n%s", proxy.Hosts())
}

// TestServicePortUpdate changes a Service's port: the new one serves, the old one closes.
func TestServicePortUpdate(t *testing.T) {
	client := clusterClient(t)
	ctx, proxy := startProxy(t, client)
	const ns, name = "port-update", "echo"
	createNamespace(ctx, t, client, ns)

	ip := hostIP(t)
	backend := echoServer(t, net.JoinHostPort(ip, "0"), "backend")
	svc, err := client.CoreV1().Services(ns).Create(ctx, selectorlessService(name, 8080), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.DiscoveryV1().EndpointSlices(ns).Create(ctx, endpointSlice("echo", name, splitPort(t, backend), ip), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, proxy.WaitForService(ctx, ns, name))
	oldAddress := net.JoinHostPort(svc.Spec.ClusterIP, "8080")
	requireAnswers(t, oldAddress, 2, "backend")

	svc, err = client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	svc.Spec.Ports[0].Port = 8081
	_, err = client.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return proxy.WaitForService(ctx, ns, name) == nil
	}, eventually, tick)
	requireAnswers(t, net.JoinHostPort(svc.Spec.ClusterIP, "8081"), 2, "backend")
	requireRefused(t, oldAddress)
}

// TestSelectorService is the harness's case: pods with loopback pod IPs (one per process node),
// which the endpointslice controller cannot publish, reached through the Service's selector and a
// named target port.
func TestSelectorService(t *testing.T) {
	client := clusterClient(t)
	ctx, proxy := startProxy(t, client)
	const ns, name = "selector", "echo"
	createNamespace(ctx, t, client, ns)
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}, eventually, tick, "the serviceaccount controller should create the default service account")

	backends := map[string]string{
		"pod-a": echoServer(t, "127.0.1.1:0", "pod-a"),
		"pod-b": echoServer(t, "127.0.1.2:0", "pod-b"),
	}
	for podName, address := range backends {
		createRunningPod(ctx, t, client, ns, podName, address)
	}
	_, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "echo"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("echo")}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, proxy.WaitForService(ctx, ns, name))
	svc, err := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	serviceAddress := net.JoinHostPort(svc.Spec.ClusterIP, "8080")
	requireAnswers(t, serviceAddress, 4, "pod-a", "pod-b")

	pod, err := client.CoreV1().Pods(ns).Get(ctx, "pod-b", metav1.GetOptions{})
	require.NoError(t, err)
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	_, err = client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(t, err)
	requireAnswers(t, serviceAddress, 4, "pod-a")
}

// createRunningPod creates a pod bound to the test node and reports it running and ready at
// address, as a process node would.
func createRunningPod(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name, address string) {
	t.Helper()
	host, _, err := net.SplitHostPort(address)
	require.NoError(t, err)
	pod, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "echo"}},
		Spec: corev1.PodSpec{
			NodeName: nodeName,
			Containers: []corev1.Container{{
				Name: "echo", Image: "sedna/echo:test",
				Ports: []corev1.ContainerPort{{Name: "echo", ContainerPort: splitPort(t, address)}},
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod.Status = corev1.PodStatus{
		Phase:      corev1.PodRunning,
		PodIP:      host,
		PodIPs:     []corev1.PodIP{{IP: host}},
		HostIP:     host,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	}
	_, err = client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// containsLine reports whether text has line (which ends in a newline) as one of its lines.
func containsLine(text, line string) bool {
	return strings.Contains("\n"+text, "\n"+line)
}
