package localcluster

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CACertFile is the cluster CA's certificate: clients of the apiserver trust it, and kubelets
// verify client certificates (the apiserver's) with it.
func (c *Cluster) CACertFile() string { return filepath.Join(c.Dir, "pki", "ca.crt") }

// IssueCertificate issues a certificate from the cluster CA: a client certificate for user name in
// groups (as a kubelet's system:node:<name> in system:nodes), and a serving one too when ips or
// dns are given. It returns the certificate and key as PEM.
func (c *Cluster) IssueCertificate(name string, groups []string, ips []net.IP, dns []string) (certPEMBytes, keyPEMBytes []byte, err error) {
	caPEM, err := os.ReadFile(c.CACertFile())
	if err != nil {
		return nil, nil, fmt.Errorf("reading the cluster CA: %w", err)
	}
	caKeyPEM, err := os.ReadFile(filepath.Join(c.Dir, "pki", "ca.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the cluster CA key: %w", err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil {
		return nil, nil, errors.New("the cluster CA is not PEM")
	}
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the cluster CA: %w", err)
	}
	keyBlock, _ := pem.Decode(caKeyPEM)
	if keyBlock == nil {
		return nil, nil, errors.New("the cluster CA key is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the cluster CA key: %w", err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the cluster CA key cannot sign")
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: groups},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IPAddresses: ips, DNSNames: dns,
	}
	if len(ips)+len(dns) > 0 {
		template.ExtKeyUsage = append(template.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, template, caCert, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the certificate of %s: %w", name, err)
	}
	keyPEMBytes, err = keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM(der), keyPEMBytes, nil
}

// APIServerPort is the port the apiserver listens on.
func (c *Cluster) APIServerPort() string {
	_, port, _ := net.SplitHostPort(c.Config.Host[len("https://"):])
	return port
}
