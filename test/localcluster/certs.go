package localcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the paths of the PEM files the control plane is started with, and the admin
// credentials in memory for the kubeconfig and the rest.Config.
type pki struct {
	caCert, caKey                        string
	apiserverCert, apiserverKey          string
	componentCert, componentKey          string // serving cert of controller-manager and scheduler
	serviceAccountPub, serviceAccountKey string
	// The front-proxy CA and the client certificate the apiserver presents when it proxies to
	// aggregated APIs; the controller-manager and scheduler read the CA to trust such requests.
	frontProxyCA, frontProxyClientCert, frontProxyClientKey string
	// The client certificate the apiserver presents to kubelets (logs, exec): system:masters, as
	// kubeadm's, so a kubelet that authorizes by webhook lets it in.
	kubeletClientCert, kubeletClientKey string

	caPEM, adminCertPEM, adminKeyPEM []byte
}

// certValidity is long enough for a local-up session of several days; the files are regenerated on
// every Start, so nothing ever needs renewing.
const certValidity = 30 * 24 * time.Hour

// issuer signs certificates with the cluster CA.
type issuer struct {
	cert   *x509.Certificate
	key    crypto.Signer
	serial int64
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating an ECDSA key: %w", err)
	}
	return key, nil
}

func (is *issuer) sign(template *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	is.serial++
	now := time.Now()
	template.SerialNumber = big.NewInt(is.serial)
	// Backdated so that a clock a little behind on another component does not reject it.
	template.NotBefore, template.NotAfter = now.Add(-time.Hour), now.Add(certValidity)
	parent, signer := is.cert, is.key
	if parent == nil { // self-signed CA
		parent = template
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %q: %w", template.Subject.CommonName, err)
	}
	return der, nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding a private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func writeFiles(files map[string][]byte) error {
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// frontProxyClientName is the only client the apiserver accepts requestheader identities from.
const frontProxyClientName = "front-proxy-client"

// newCA creates a self-signed CA.
func newCA(name string) (*issuer, *ecdsa.PrivateKey, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, nil, err
	}
	ca := &issuer{key: key}
	der, err := ca.sign(&x509.Certificate{
		Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, &key.PublicKey)
	if err != nil {
		return nil, nil, nil, err
	}
	if ca.cert, err = x509.ParseCertificate(der); err != nil {
		return nil, nil, nil, fmt.Errorf("parsing CA certificate %s: %w", name, err)
	}
	return ca, key, der, nil
}

// generatePKI writes a CA, the apiserver's serving certificate, a serving certificate for the
// controller-manager and scheduler, and the service-account key pair into dir, and returns an admin
// client certificate (O=system:masters) in memory.
func generatePKI(dir string, serviceIP net.IP) (*pki, error) {
	ca, caKey, caDER, err := newCA("sedna-local-ca")
	if err != nil {
		return nil, err
	}
	frontProxy, _, frontProxyDER, err := newCA("sedna-local-front-proxy-ca")
	if err != nil {
		return nil, err
	}

	p := &pki{
		caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"),
		apiserverCert: filepath.Join(dir, "apiserver.crt"), apiserverKey: filepath.Join(dir, "apiserver.key"),
		componentCert: filepath.Join(dir, "component.crt"), componentKey: filepath.Join(dir, "component.key"),
		serviceAccountPub: filepath.Join(dir, "sa.pub"), serviceAccountKey: filepath.Join(dir, "sa.key"),
		frontProxyCA:         filepath.Join(dir, "front-proxy-ca.crt"),
		frontProxyClientCert: filepath.Join(dir, "front-proxy-client.crt"),
		frontProxyClientKey:  filepath.Join(dir, "front-proxy-client.key"),
		kubeletClientCert:    filepath.Join(dir, "apiserver-kubelet-client.crt"),
		kubeletClientKey:     filepath.Join(dir, "apiserver-kubelet-client.key"),
		caPEM:                certPEM(caDER),
	}
	files := map[string][]byte{p.caCert: p.caPEM, p.frontProxyCA: certPEM(frontProxyDER)}
	if files[p.caKey], err = keyPEM(caKey); err != nil {
		return nil, err
	}

	serving := func(name string, dns []string, ips []net.IP, certPath, keyPath string) error {
		key, err := newKey()
		if err != nil {
			return err
		}
		der, err := ca.sign(&x509.Certificate{
			Subject: pkix.Name{CommonName: name}, DNSNames: dns, IPAddresses: ips,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}, &key.PublicKey)
		if err != nil {
			return err
		}
		files[certPath] = certPEM(der)
		files[keyPath], err = keyPEM(key)
		return err
	}
	// In-cluster clients reach the apiserver by the kubernetes service's name or its cluster IP.
	if err := serving("kube-apiserver",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), serviceIP}, p.apiserverCert, p.apiserverKey); err != nil {
		return nil, fmt.Errorf("apiserver serving certificate: %w", err)
	}
	// Without a certificate of our own the controller-manager and scheduler serve a self-signed one,
	// and health checks would have to skip verification.
	if err := serving("localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)},
		p.componentCert, p.componentKey); err != nil {
		return nil, fmt.Errorf("component serving certificate: %w", err)
	}

	// A separate CA, as kubeadm does: a certificate from the cluster CA must not be able to pose
	// as the front proxy and assert any user name in a header.
	proxyKey, err := newKey()
	if err != nil {
		return nil, err
	}
	proxyDER, err := frontProxy.sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: frontProxyClientName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &proxyKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("front-proxy client certificate: %w", err)
	}
	files[p.frontProxyClientCert] = certPEM(proxyDER)
	if files[p.frontProxyClientKey], err = keyPEM(proxyKey); err != nil {
		return nil, err
	}

	kubeletClientKey, err := newKey()
	if err != nil {
		return nil, err
	}
	kubeletClientDER, err := ca.sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &kubeletClientKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	files[p.kubeletClientCert] = certPEM(kubeletClientDER)
	if files[p.kubeletClientKey], err = keyPEM(kubeletClientKey); err != nil {
		return nil, err
	}

	adminKey, err := newKey()
	if err != nil {
		return nil, err
	}
	adminDER, err := ca.sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "sedna-local-admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &adminKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("admin client certificate: %w", err)
	}
	p.adminCertPEM = certPEM(adminDER)
	if p.adminKeyPEM, err = keyPEM(adminKey); err != nil {
		return nil, err
	}

	saKey, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	if files[p.serviceAccountKey], err = keyPEM(saKey); err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encoding the service-account public key: %w", err)
	}
	files[p.serviceAccountPub] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER})

	if err := writeFiles(files); err != nil {
		return nil, err
	}
	return p, nil
}
