package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// certReloader serves the certificate in a pair of PEM files and loads it again when either
// file changes, so a rotated certificate (a renewed Secret's volume, cert-manager) is served
// without a restart. A pair that cannot be loaded (a rotation half written) keeps the previous
// certificate in service and is tried again at the next handshake.
type certReloader struct {
	certFile, keyFile string
	logger            klog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
	lastErr   string
}

// fileStamp tells whether a file changed.
type fileStamp struct {
	modTime time.Time
	size    int64
}

func stamp(path string) (fileStamp, error) {
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{modTime: info.ModTime(), size: info.Size()}, nil
}

// newCertReloader loads the pair once; an error here is a configuration error.
func newCertReloader(ctx context.Context, certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, logger: klog.FromContext(ctx)}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload loads the pair if a file changed since the last load. Called with mu held, or before
// r is shared.
func (r *certReloader) reload() error {
	certStamp, err := stamp(r.certFile)
	if err != nil {
		return fmt.Errorf("reading the channel's serving certificate: %w", err)
	}
	keyStamp, err := stamp(r.keyFile)
	if err != nil {
		return fmt.Errorf("reading the channel's serving key: %w", err)
	}
	if r.cert != nil && certStamp == r.certStamp && keyStamp == r.keyStamp {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading the channel's serving certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	if r.cert != nil {
		r.logger.Info("Loaded the rotated channel serving certificate", "file", r.certFile)
	}
	r.cert, r.certStamp, r.keyStamp = &cert, certStamp, keyStamp
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reload(); err != nil {
		if msg := err.Error(); msg != r.lastErr {
			r.lastErr = msg
			r.logger.Error(err, "Keeping the previous channel serving certificate")
		}
	} else {
		r.lastErr = ""
	}
	return r.cert, nil
}
