package serviceproxy

import (
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// hasClusterIP reports whether svc gets listeners: it has an allocated, non-headless cluster IP
// and a type kube-proxy serves on that IP.
func hasClusterIP(svc *corev1.Service) bool {
	// The apiserver's own Service has no endpoints here (it cannot publish its loopback address)
	// and port 443 needs privileges; clients reach the apiserver directly.
	if svc.Namespace == metav1.NamespaceDefault && svc.Name == "kubernetes" {
		return false
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return false
	}
	switch svc.Spec.Type {
	case "", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		return true
	}
	return false
}

// tcpPorts returns the service ports the proxy listens on, keyed by listen address.
func tcpPorts(svc *corev1.Service) map[portKey]corev1.ServicePort {
	ports := map[portKey]corev1.ServicePort{}
	if svc == nil || !hasClusterIP(svc) {
		return ports
	}
	for _, port := range svc.Spec.Ports {
		if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP {
			continue
		}
		key := portKey{name: port.Name, address: net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port.Port)))}
		ports[key] = port
	}
	return ports
}

// sliceEndpoints returns the "ip:port" addresses of the ready endpoints for the service port named
// portName in the given EndpointSlices.
func sliceEndpoints(endpointSlices []*discoveryv1.EndpointSlice, portName string) []string {
	var addresses []string
	for _, slice := range endpointSlices {
		if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port, ok := slicePort(slice, portName)
		if !ok {
			continue
		}
		for _, endpoint := range slice.Endpoints {
			if endpoint.Conditions.Ready != nil && !*endpoint.Conditions.Ready {
				continue
			}
			// The addresses of one endpoint are fungible; consumers may use only the first.
			if len(endpoint.Addresses) == 0 {
				continue
			}
			addresses = append(addresses, net.JoinHostPort(endpoint.Addresses[0], strconv.Itoa(int(port))))
		}
	}
	return addresses
}

func slicePort(slice *discoveryv1.EndpointSlice, portName string) (int32, bool) {
	for _, port := range slice.Ports {
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if name != portName || port.Port == nil {
			continue
		}
		if port.Protocol != nil && *port.Protocol != corev1.ProtocolTCP {
			continue
		}
		return *port.Port, true
	}
	return 0, false
}

// podEndpoints returns the "ip:port" addresses the selected pods serve port on, as the
// endpointslice controller would publish them: running, not terminating, with a pod IP, Ready
// unless the service publishes not-ready addresses, and with the target port resolvable.
func podEndpoints(svc *corev1.Service, port corev1.ServicePort, pods []*corev1.Pod) []string {
	var addresses []string
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		if !svc.Spec.PublishNotReadyAddresses && !podReady(pod) {
			continue
		}
		target, ok := targetPort(pod, port)
		if !ok {
			continue
		}
		addresses = append(addresses, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(target))))
	}
	return addresses
}

func podReady(pod *corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// targetPort resolves the service port's targetPort on pod: a number as is (unset means the
// service port), a name through the pod's TCP container ports.
func targetPort(pod *corev1.Pod, port corev1.ServicePort) (int32, bool) {
	switch {
	case port.TargetPort.Type == intstr.String && port.TargetPort.StrVal != "":
		for _, container := range pod.Spec.Containers {
			for _, containerPort := range container.Ports {
				protocol := containerPort.Protocol
				if containerPort.Name == port.TargetPort.StrVal && (protocol == "" || protocol == corev1.ProtocolTCP) {
					return containerPort.ContainerPort, true
				}
			}
		}
		return 0, false
	case port.TargetPort.Type == intstr.Int && port.TargetPort.IntVal != 0:
		return port.TargetPort.IntVal, true
	default:
		return port.Port, true
	}
}

// mergeEndpoints sorts and de-duplicates endpoint addresses, so that the round-robin order is
// stable and an endpoint known both from a slice and from its pod counts once.
func mergeEndpoints(lists ...[]string) []string {
	var all []string
	for _, list := range lists {
		all = append(all, list...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}
