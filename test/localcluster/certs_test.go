package localcluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block, "%s holds no PEM block", path)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func TestGeneratePKI(t *testing.T) {
	serviceIP := net.ParseIP("127.0.100.1")
	p, err := generatePKI(t.TempDir(), serviceIP)
	require.NoError(t, err)

	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(p.caPEM))
	apiserver := readCert(t, p.apiserverCert)
	// In-cluster clients dial the service name or the service IP; local clients dial 127.0.0.1.
	for _, host := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc", "127.0.100.1"} {
		_, err := apiserver.Verify(x509.VerifyOptions{DNSName: host, Roots: roots})
		require.NoError(t, err, "apiserver certificate should be valid for %s", host)
	}
	_, err = apiserver.Verify(x509.VerifyOptions{DNSName: "127.0.100.2", Roots: roots})
	require.Error(t, err, "apiserver certificate must not cover other service IPs")

	admin, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	require.NoError(t, err)
	adminCert, err := x509.ParseCertificate(admin.Certificate[0])
	require.NoError(t, err)
	require.Equal(t, []string{"system:masters"}, adminCert.Subject.Organization)
	_, err = adminCert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)

	// The front-proxy client must chain only to the front-proxy CA.
	proxyRoots := x509.NewCertPool()
	proxyRoots.AddCert(readCert(t, p.frontProxyCA))
	proxy := readCert(t, p.frontProxyClientCert)
	require.Equal(t, frontProxyClientName, proxy.Subject.CommonName)
	_, err = proxy.Verify(x509.VerifyOptions{Roots: proxyRoots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)
	_, err = proxy.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.Error(t, err)

	_, err = tls.LoadX509KeyPair(p.componentCert, p.componentKey)
	require.NoError(t, err)
	_, err = tls.LoadX509KeyPair(p.frontProxyClientCert, p.frontProxyClientKey)
	require.NoError(t, err)
}
