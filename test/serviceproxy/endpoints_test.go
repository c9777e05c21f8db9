package serviceproxy

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestSliceEndpoints(t *testing.T) {
	ready := func(ip string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}
	}
	slice := func(addressType discoveryv1.AddressType, ports []discoveryv1.EndpointPort, endpoints ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{AddressType: addressType, Ports: ports, Endpoints: endpoints}
	}
	web := []discoveryv1.EndpointPort{{Name: ptr("web"), Port: ptr(int32(9000))}, {Name: ptr("metrics"), Port: ptr(int32(9100))}}
	for name, tc := range map[string]struct {
		slices   []*discoveryv1.EndpointSlice
		portName string
		want     []string
	}{
		"ready and unknown readiness count, not-ready does not": {
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, web,
				ready("10.0.0.1"),
				discoveryv1.Endpoint{Addresses: []string{"10.0.0.2"}},
				discoveryv1.Endpoint{Addresses: []string{"10.0.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
			)},
			portName: "web",
			want:     []string{"10.0.0.1:9000", "10.0.0.2:9000"},
		},
		"port chosen by name": {
			slices:   []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, web, ready("10.0.0.1"))},
			portName: "metrics",
			want:     []string{"10.0.0.1:9100"},
		},
		"unnamed port": {
			slices:   []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{{Port: ptr(int32(80))}}, ready("10.0.0.1"))},
			portName: "",
			want:     []string{"10.0.0.1:80"},
		},
		"slice without the port is skipped": {
			slices:   []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, web, ready("10.0.0.1"))},
			portName: "grpc",
		},
		"udp port is skipped": {
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{{Name: ptr("dns"), Port: ptr(int32(53)), Protocol: ptr(corev1.ProtocolUDP)}}, ready("10.0.0.1"))},
			portName: "dns",
		},
		"fqdn slices are skipped, ipv6 joined with brackets, several slices merged": {
			slices: []*discoveryv1.EndpointSlice{
				slice(discoveryv1.AddressTypeFQDN, web, ready("example.com")),
				slice(discoveryv1.AddressTypeIPv6, web, ready("fd00::1")),
				slice(discoveryv1.AddressTypeIPv4, web, ready("10.0.0.9")),
			},
			portName: "web",
			want:     []string{"[fd00::1]:9000", "10.0.0.9:9000"},
		},
		"only the first address of an endpoint": {
			slices: []*discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, web,
				discoveryv1.Endpoint{Addresses: []string{"10.0.0.1", "10.0.0.2"}})},
			portName: "web",
			want:     []string{"10.0.0.1:9000"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, sliceEndpoints(tc.slices, tc.portName))
		})
	}
}

func TestPodEndpoints(t *testing.T) {
	pod := func(name, ip string, ready bool, mutate ...func(*corev1.Pod)) *corev1.Pod {
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name:  "main",
				Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 9000}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}},
			}}},
			Status: corev1.PodStatus{
				Phase:      corev1.PodRunning,
				PodIP:      ip,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
			},
		}
		for _, m := range mutate {
			m(p)
		}
		return p
	}
	named := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("web")}
	for name, tc := range map[string]struct {
		publishNotReady bool
		port            corev1.ServicePort
		pods            []*corev1.Pod
		want            []string
	}{
		"named target port, only ready running pods with an IP": {
			port: named,
			pods: []*corev1.Pod{
				pod("ready", "127.0.1.1", true),
				pod("not-ready", "127.0.1.2", false),
				pod("no-ip", "", true),
				pod("terminating", "127.0.1.3", true, func(p *corev1.Pod) { p.DeletionTimestamp = ptr(metav1.Now()) }),
				pod("succeeded", "127.0.1.4", true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
			},
			want: []string{"127.0.1.1:9000"},
		},
		"publishNotReadyAddresses includes not-ready pods": {
			publishNotReady: true,
			port:            named,
			pods:            []*corev1.Pod{pod("not-ready", "127.0.1.2", false)},
			want:            []string{"127.0.1.2:9000"},
		},
		"numeric target port": {
			port: corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080)},
			pods: []*corev1.Pod{pod("a", "127.0.1.1", true)},
			want: []string{"127.0.1.1:8080"},
		},
		"unset target port means the service port": {
			port: corev1.ServicePort{Port: 80},
			pods: []*corev1.Pod{pod("a", "127.0.1.1", true)},
			want: []string{"127.0.1.1:80"},
		},
		"named port that is udp or missing does not resolve": {
			port: corev1.ServicePort{Port: 53, TargetPort: intstr.FromString("dns")},
			pods: []*corev1.Pod{pod("a", "127.0.1.1", true)},
		},
	} {
		t.Run(name, func(t *testing.T) {
			svc := &corev1.Service{Spec: corev1.ServiceSpec{PublishNotReadyAddresses: tc.publishNotReady}}
			require.Equal(t, tc.want, podEndpoints(svc, tc.port, tc.pods))
		})
	}
}

func TestTCPPorts(t *testing.T) {
	service := func(typ corev1.ServiceType, clusterIP string) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Type: typ, ClusterIP: clusterIP, Ports: []corev1.ServicePort{
			{Name: "web", Port: 8080, Protocol: corev1.ProtocolTCP},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			{Name: "grpc", Port: 9000},
		}}}
	}
	want := map[portKey]corev1.ServicePort{
		{name: "web", address: "127.0.100.7:8080"}:  {Name: "web", Port: 8080, Protocol: corev1.ProtocolTCP},
		{name: "grpc", address: "127.0.100.7:9000"}: {Name: "grpc", Port: 9000},
	}
	for name, tc := range map[string]struct {
		svc  *corev1.Service
		want map[portKey]corev1.ServicePort
	}{
		"cluster ip":           {svc: service(corev1.ServiceTypeClusterIP, "127.0.100.7"), want: want},
		"node port":            {svc: service(corev1.ServiceTypeNodePort, "127.0.100.7"), want: want},
		"load balancer":        {svc: service(corev1.ServiceTypeLoadBalancer, "127.0.100.7"), want: want},
		"headless":             {svc: service(corev1.ServiceTypeClusterIP, corev1.ClusterIPNone), want: map[portKey]corev1.ServicePort{}},
		"external name":        {svc: service(corev1.ServiceTypeExternalName, ""), want: map[portKey]corev1.ServicePort{}},
		"deleted (no service)": {svc: nil, want: map[portKey]corev1.ServicePort{}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, tcpPorts(tc.svc))
		})
	}
}

func TestMergeEndpoints(t *testing.T) {
	require.Equal(t, []string{"127.0.1.1:80", "127.0.1.2:80"},
		mergeEndpoints([]string{"127.0.1.2:80", "127.0.1.1:80"}, []string{"127.0.1.1:80"}))
	require.Empty(t, mergeEndpoints(nil, nil))
}

func ptr[T any](v T) *T { return &v }
