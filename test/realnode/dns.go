package realnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// clusterDomain is the kubelets' clusterDomain.
const clusterDomain = "svc.cluster.local."

// DNS is the cluster DNS of the real-node tier: nothing can be pulled, so instead of CoreDNS in a
// pod, a small server on the host answers what CoreDNS's kubernetes plugin answers for Services —
// A records for <service>.<namespace>.svc.cluster.local, the Service's ClusterIP, read from the API
// server on every query — on each node's bridge address (the kubelets' clusterDNS). It serves
// UDP only (Go's resolver, which every Sedna image uses, asks over UDP), ClusterIP Services only
// (no headless or ExternalName, no pod records), and refuses names outside cluster.local: nothing
// on these nodes resolves names on the internet.
type DNS struct {
	client kubernetes.Interface
	conns  []net.PacketConn
	wg     sync.WaitGroup
	logger klog.Logger
}

// ServeDNS listens on port 53 of each address (the nodes' bridge addresses, reachable only from
// this machine and its pods) and answers from client.
func ServeDNS(ctx context.Context, client kubernetes.Interface, addrs ...net.IP) (*DNS, error) {
	d := &DNS{client: client, logger: klog.FromContext(ctx).WithName("dns")}
	for _, a := range addrs {
		conn, err := net.ListenPacket("udp4", net.JoinHostPort(a.String(), "53"))
		if err != nil {
			_ = d.Stop()
			return nil, fmt.Errorf("cluster DNS on %s: %w", a, err)
		}
		d.conns = append(d.conns, conn)
		d.wg.Add(1)
		go d.serve(conn)
	}
	return d, nil
}

// Stop closes the listeners and waits for the servers to end.
func (d *DNS) Stop() error {
	var errs []error
	for _, c := range d.conns {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	d.wg.Wait()
	return errors.Join(errs...)
}

func (d *DNS) serve(conn net.PacketConn) {
	defer d.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		resp, err := d.answer(buf[:n])
		if err != nil {
			d.logger.V(2).Info("Dropping a DNS query", "from", from, "err", err)
			continue
		}
		if _, err := conn.WriteTo(resp, from); err != nil {
			d.logger.V(2).Info("Writing a DNS answer failed", "to", from, "err", err)
		}
	}
}

// answer builds the response to one query message.
func (d *DNS) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	hdr, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	respHdr := dnsmessage.Header{ID: hdr.ID, Response: true, Authoritative: true, RecursionDesired: hdr.RecursionDesired}
	var answers []dnsmessage.AResource
	name := strings.ToLower(q.Name.String())
	switch {
	case q.Class != dnsmessage.ClassINET || !strings.HasSuffix(name, ".cluster.local."):
		respHdr.RCode = dnsmessage.RCodeRefused
		respHdr.Authoritative = false
	default:
		ip, found, err := d.lookup(name)
		switch {
		case err != nil:
			respHdr.RCode = dnsmessage.RCodeServerFailure
		case !found:
			respHdr.RCode = dnsmessage.RCodeNameError
		case q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL:
			var a [4]byte
			copy(a[:], ip.To4())
			answers = append(answers, dnsmessage.AResource{A: a})
		}
	}
	b := dnsmessage.NewBuilder(nil, respHdr)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	for _, a := range answers {
		if err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}, a); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// lookup resolves <service>.<namespace>.svc.cluster.local. to the Service's IPv4 ClusterIP.
func (d *DNS) lookup(name string) (net.IP, bool, error) {
	rest, ok := strings.CutSuffix(name, "."+clusterDomain)
	if !ok {
		return nil, false, nil
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 2 {
		return nil, false, nil
	}
	ctx := context.Background()
	svc, err := d.client.CoreV1().Services(parts[1]).Get(ctx, parts[0], metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil, false, nil
	}
	ip := net.ParseIP(svc.Spec.ClusterIP)
	if ip == nil || ip.To4() == nil {
		return nil, false, nil
	}
	return ip, true, nil
}
