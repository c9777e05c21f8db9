package processnode

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/netns"
)

// DefaultKubeletPort is the kubelet API port, served on the node's own address.
const DefaultKubeletPort = 10250

// serveKubeletAPI serves the part of the kubelet API kubectl needs for `kubectl logs`: the
// apiserver proxies GET /containerLogs/{ns}/{pod}/{container} to the node's InternalIP and
// kubelet port. The serving certificate is self-signed: an apiserver without
// --kubelet-certificate-authority does not verify it, and requests are not authenticated, which
// is acceptable on a loopback address of a development machine only.
func serveKubeletAPI(ctx context.Context, opts NodeOptions) (func(), error) {
	cert, err := selfSignedCert(opts.IP)
	if err != nil {
		return nil, err
	}
	address := net.JoinHostPort(opts.IP, strconv.Itoa(opts.KubeletPort))
	var listener net.Listener
	if opts.NetNS != "" {
		listener, err = netns.Listen(opts.NetNS, "tcp", address)
	} else {
		listener, err = net.Listen("tcp", address)
	}
	if err != nil {
		return nil, fmt.Errorf("listening for the kubelet API: %w", err)
	}
	mux := http.NewServeMux()
	api.AttachPodRoutes(api.PodHandlerConfig{GetContainerLogs: containerLogs(opts.logDir())}, mux, false)
	server := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger := klog.FromContext(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := server.ServeTLS(listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "Kubelet API server stopped")
		}
	}()
	return func() {
		_ = server.Close() // nothing to drain: log reads are short
		<-done
	}, nil
}

// containerLogs reads a container's log file (all its restarts, so Previous reads the same file).
// Follow is not supported: the current content is returned.
func containerLogs(logDir string) api.ContainerLogsHandlerFunc {
	return func(_ context.Context, namespace, pod, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
		data, err := os.ReadFile(filepath.Join(logDir, fmt.Sprintf("%s_%s_%s.log", namespace, pod, container)))
		if err != nil {
			return nil, fmt.Errorf("container %s of pod %s/%s has no log on this node: %w", container, namespace, pod, err)
		}
		if opts.Tail > 0 {
			lines := bytes.SplitAfter(data, []byte("\n"))
			if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
				lines = lines[:len(lines)-1]
			}
			if len(lines) > opts.Tail {
				data = bytes.Join(lines[len(lines)-opts.Tail:], nil)
			}
		}
		if opts.LimitBytes > 0 && len(data) > opts.LimitBytes {
			data = data[:opts.LimitBytes]
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
}

func selfSignedCert(ip string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "processnode-" + ip},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("signing the kubelet serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
