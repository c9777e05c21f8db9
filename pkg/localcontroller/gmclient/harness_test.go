package gmclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Generous: the race detector on two busy cores is slow, and nothing here waits for a timeout.
const (
	eventually = 20 * time.Second
	tick       = 10 * time.Millisecond
)

// testPKI is a CA and a serving certificate for 127.0.0.1 signed by it.
type testPKI struct {
	caPEM      []byte
	serverCert tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test GM CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "sedna-gm"},
		DNSNames:     []string{"sedna-gm.sedna.svc"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, caCert, &serverKey.PublicKey, caKey)
	require.NoError(t, err)
	return &testPKI{
		caPEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		serverCert: tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey},
	}
}

func (p *testPKI) writeCA(t *testing.T, path string) {
	t.Helper()
	writeFileAtomically(t, path, p.caPEM)
}

// writeFileAtomically replaces path the way the kubelet updates projected volumes, so a reader
// never sees half a file.
func writeFileAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// recordingAuth wraps the GM's static token authenticator, records what each dial presented and
// can revoke tokens.
type recordingAuth struct {
	static messagelayer.StaticTokenAuthenticator

	mu       sync.Mutex
	revoked  map[string]bool
	attempts []authAttempt
}

type authAttempt struct {
	token    string
	accepted bool
}

func (a *recordingAuth) Authenticate(ctx context.Context, token string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	node, err := a.static.Authenticate(ctx, token)
	if err == nil && a.revoked[token] {
		node, err = "", fmt.Errorf("%w: token revoked", messagelayer.ErrUnauthenticated)
	}
	a.attempts = append(a.attempts, authAttempt{token: token, accepted: err == nil})
	return node, err
}

func (a *recordingAuth) revoke(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[token] = true
}

func (a *recordingAuth) seen() []authAttempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]authAttempt(nil), a.attempts...)
}

// testGM is the real GM end of the channel (messagelayer hub and server) on loopback TLS.
type testGM struct {
	t       *testing.T
	pki     *testPKI
	hub     *messagelayer.Hub
	metrics *messagelayer.Metrics
	auth    *recordingAuth
	srv     *httptest.Server
	ctx     context.Context

	mu       sync.Mutex
	reports  []string   // name:content of accepted dataset reports, in arrival order
	conns    []net.Conn // raw TCP connections upgraded to websockets
	onReport func(count int)
}

const (
	testNode  = "node-a"
	testToken = "token-a"
)

// newTestGM builds the hub; call start to serve it.
func newTestGM(t *testing.T, ctx context.Context, opts messagelayer.Options) *testGM {
	t.Helper()
	gm := &testGM{
		t:       t,
		pki:     newTestPKI(t),
		metrics: messagelayer.NewMetrics(nil),
		auth: &recordingAuth{
			static:  messagelayer.StaticTokenAuthenticator{Tokens: map[string]string{testToken: testNode, "token-b": "node-b"}},
			revoked: map[string]bool{},
		},
		ctx: klog.NewContext(ctx, klog.FromContext(ctx).WithName("gm")),
	}
	gm.hub = messagelayer.NewHub(opts, gm.metrics)
	gm.hub.RegisterHandler("dataset", messagelayer.ReportHandlerFunc(func(_ context.Context, node string, key channel.Key, content []byte) error {
		gm.mu.Lock()
		gm.reports = append(gm.reports, key.Name+":"+string(content))
		count, hook := len(gm.reports), gm.onReport
		gm.mu.Unlock()
		if hook != nil {
			hook(count)
		}
		return nil
	}))
	return gm
}

// start serves the GM on addr ("" = any free loopback port).
func (gm *testGM) start(addr string) {
	t := gm.t
	t.Helper()
	ctx, cancel := context.WithCancel(gm.ctx)
	srv := httptest.NewUnstartedServer(messagelayer.NewServer(ctx, gm.hub, gm.auth))
	if addr != "" {
		require.NoError(t, srv.Listener.Close())
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err, "the reserved address was taken in the meantime")
		srv.Listener = l
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{gm.pki.serverCert}, MinVersion: tls.VersionTLS12}
	srv.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if state != http.StateHijacked {
			return
		}
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		gm.mu.Lock()
		gm.conns = append(gm.conns, c)
		gm.mu.Unlock()
	}
	srv.StartTLS()
	gm.srv = srv
	t.Cleanup(func() {
		cancel()
		gm.kick()
		srv.Close()
	})
}

func (gm *testGM) url() string { return "wss://" + gm.srv.Listener.Addr().String() + "/" }

// kick cuts every websocket at the TCP level, as a network failure would.
func (gm *testGM) kick() {
	gm.mu.Lock()
	defer gm.mu.Unlock()
	for _, c := range gm.conns {
		_ = c.Close() // may already be closed; either way it is gone
	}
}

func (gm *testGM) upgrades() int {
	gm.mu.Lock()
	defer gm.mu.Unlock()
	return len(gm.conns)
}

func (gm *testGM) acceptedReports() []string {
	gm.mu.Lock()
	defer gm.mu.Unlock()
	return append([]string(nil), gm.reports...)
}

func (gm *testGM) setOnReport(hook func(count int)) {
	gm.mu.Lock()
	defer gm.mu.Unlock()
	gm.onReport = hook
}

func (gm *testGM) framesAcked() float64 { return testutil.ToFloat64(gm.metrics.FramesAcked) }

func (gm *testGM) publish(name string, version uint64, nodes ...string) {
	gm.hub.Publish(datasetKey(name), version, gmObject(name, version), nodes...)
}

// reserveAddr returns a loopback address nothing listens on yet.
func reserveAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func datasetKey(name string) channel.Key {
	return channel.Key{Kind: "dataset", Namespace: "default", Name: name}
}

func storeKey(name string) store.ResourceKey {
	return store.ResourceKey{Kind: "dataset", Namespace: "default", Name: name}
}

func gmObject(name string, version uint64) []byte {
	return fmt.Appendf(nil, `{"kind":"Dataset","metadata":{"name":%q,"namespace":"default","resourceVersion":"%d"}}`, name, version)
}

// recordingHandler records what the client dispatched, in order.
type recordingHandler struct {
	mu     sync.Mutex
	events []string
}

func (h *recordingHandler) ResourceChanged(_ context.Context, r store.Resource) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, fmt.Sprintf("changed %s@%d", r.Key, r.Version))
}

func (h *recordingHandler) ResourceDeleted(_ context.Context, key store.ResourceKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, "deleted "+key.String())
}

func (h *recordingHandler) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "lc.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

// lcFixture is one LC: its token file, CA file, store and handler.
type lcFixture struct {
	dir       string
	tokenFile string
	caFile    string
	store     *store.Store
	handler   *recordingHandler
}

func newLC(t *testing.T, gm *testGM) *lcFixture {
	t.Helper()
	dir := t.TempDir()
	lc := &lcFixture{
		dir:       dir,
		tokenFile: filepath.Join(dir, "token"),
		caFile:    filepath.Join(dir, "ca.crt"),
		store:     openStore(t),
		handler:   &recordingHandler{},
	}
	writeFileAtomically(t, lc.tokenFile, []byte(testToken+"\n"))
	gm.pki.writeCA(t, lc.caFile)
	return lc
}

// fastOptions dial again quickly so tests do not wait for production backoffs.
func (lc *lcFixture) options(url string) Options {
	return Options{
		URL:            url,
		NodeName:       testNode,
		TokenFile:      lc.tokenFile,
		CAFile:         lc.caFile,
		InitialBackoff: 5 * time.Millisecond,
		MaxBackoff:     50 * time.Millisecond,
	}
}

func (lc *lcFixture) newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(opts, lc.store, lc.handler)
	require.NoError(t, err)
	return c
}

// run starts c and stops it, waiting for it to return, when the test ends.
func run(t *testing.T, ctx context.Context, c *Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(klog.NewContext(ctx, klog.FromContext(ctx).WithName("lc")))
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(eventually):
			t.Error("Run did not return after its context ended")
		}
	})
}

func testContext(t *testing.T) context.Context {
	_, ctx := ktesting.NewTestContext(t)
	return ctx
}

// bufferedContext also keeps the log so a test can check what was logged.
func bufferedContext(t *testing.T) (context.Context, ktesting.Buffer) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	underlier, ok := logger.GetSink().(ktesting.Underlier)
	require.True(t, ok)
	return klog.NewContext(context.Background(), logger), underlier.GetBuffer()
}

func resourceNames(t *testing.T, st *store.Store) []string {
	t.Helper()
	resources, err := st.ListResources("")
	require.NoError(t, err)
	var names []string
	for _, r := range resources {
		names = append(names, fmt.Sprintf("%s@%d", r.Key.Name, r.Version))
	}
	return names
}

func outboxLen(t *testing.T, st *store.Store) int {
	t.Helper()
	n, err := st.OutboxLen()
	require.NoError(t, err)
	return n
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
