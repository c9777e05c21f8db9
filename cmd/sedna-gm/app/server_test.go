package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	sednafake "github.com/sedna-go/sedna/pkg/client/clientset/versioned/fake"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/test/integration/framework"
)

func testConfig(t *testing.T, channelPort int) *config.Config {
	t.Helper()
	cert, err := framework.WriteServingCert(t.TempDir(), "127.0.0.1")
	require.NoError(t, err)
	enabled := true
	cfg := &config.Config{
		WebSocket: config.WebSocket{Address: "127.0.0.1", Port: channelPort, TLSCertFile: cert.CertFile, TLSKeyFile: cert.KeyFile},
		LeaderElection: config.LeaderElection{Enabled: &enabled, LeaseNamespace: "sedna", LeaseName: "sedna-gm",
			LeaseDuration: config.Duration{Duration: 3 * time.Second}, RenewDeadline: config.Duration{Duration: 2 * time.Second},
			RetryPeriod: config.Duration{Duration: 100 * time.Millisecond}},
		MetricsAddress: "127.0.0.1:0", HealthAddress: "127.0.0.1:0",
	}
	cfg.SetDefaults()
	require.NoError(t, cfg.Validate())
	return cfg
}

func fakeClients() (clients, *fake.Clientset) {
	kube := fake.NewClientset()
	return clients{kube: kube, sedna: sednafake.NewClientset(), reviews: kube.AuthenticationV1().TokenReviews()}, kube
}

func leaseHolder(t *testing.T, kube *fake.Clientset) string {
	t.Helper()
	lease, err := kube.CoordinationV1().Leases("sedna").Get(context.Background(), "sedna-gm", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// TestALeaderThatCannotServeLCsGivesUpTheLease: with the channel port taken, GM must not sit
// on the Lease serving no LC: it returns an error naming the port and releases the Lease, so
// the standby (or the restarted process) takes over.
func TestALeaderThatCannotServeLCsGivesUpTheLease(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = taken.Close() }()
	cfg := testConfig(t, taken.Addr().(*net.TCPAddr).Port)
	c, kube := fakeClients()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, "gm-a", c) }()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "listening on "+taken.Addr().String())
	case <-time.After(20 * time.Second):
		t.Fatal("GM kept running (and leading) although it cannot serve LCs")
	}
	lease, err := kube.CoordinationV1().Leases("sedna").Get(context.Background(), "sedna-gm", metav1.GetOptions{})
	require.NoError(t, err, "GM never took the Lease")
	require.Empty(t, leaseHolder(t, kube), "GM still holds the Lease: %+v", lease.Spec)
}

// TestRunWithLeaderElectionWaitsForLead: when GM is stopped, the elector returns at once while
// lead is still shutting the controllers down; GM must wait for lead and return its error
// (reading lead's result while lead writes it was a data race).
func TestRunWithLeaderElectionWaitsForLead(t *testing.T) {
	cfg := testConfig(t, 9000)
	kube := fake.NewClientset()
	errShutdown := errors.New("controllers failed while stopping")
	leading := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runWithLeaderElection(ctx, cfg, kube, "gm-a", func(ctx context.Context) error {
			close(leading)
			<-ctx.Done()
			time.Sleep(200 * time.Millisecond) // the controllers take a while to stop
			return errShutdown
		})
	}()
	select {
	case <-leading:
	case <-time.After(20 * time.Second):
		t.Fatal("never led")
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("did not return")
	}
	// Let a lead that was not waited for finish while the race detector watches.
	time.Sleep(300 * time.Millisecond)
	require.ErrorIs(t, err, errShutdown, "returned before lead finished, or lost its error")
}

func TestReviewClientHasItsOwnRateBudget(t *testing.T) {
	cfg := testConfig(t, 9000)
	cfg.WebSocket.TokenReview.QPS, cfg.WebSocket.TokenReview.Burst = 7, 9
	base := &rest.Config{Host: "https://apiserver", QPS: 100, Burst: 200, UserAgent: "sedna-gm"}
	review := reviewClientConfig(base, cfg)
	require.Equal(t, float32(7), review.QPS)
	require.Equal(t, 9, review.Burst)
	require.Nil(t, review.RateLimiter, "a shared limiter would make reviews queue behind the controllers")
	require.Equal(t, float32(100), base.QPS, "the controllers' config is unchanged")
	require.Equal(t, "https://apiserver", review.Host)
}

func TestEventClientHasItsOwnRateBudget(t *testing.T) {
	cfg := testConfig(t, 9000)
	cfg.KubeAPI.EventQPS, cfg.KubeAPI.EventBurst = 3, 4
	base := &rest.Config{Host: "https://apiserver", QPS: config.NoRateLimit, Burst: 200, UserAgent: "sedna-gm"}
	events := eventClientConfig(base, cfg)
	require.Equal(t, float32(3), events.QPS)
	require.Equal(t, 4, events.Burst)
	require.Nil(t, events.RateLimiter, "a shared limiter would let Events take the controllers' requests")
	require.Equal(t, "sedna-gm events", events.UserAgent)
	require.Equal(t, float32(config.NoRateLimit), base.QPS, "the controllers' config is unchanged")
}

// TestTheChannelCertificateIsReloadedWhenItsFilesChange serves TLS with the reloader and
// rotates the files under it: the next handshake presents the new certificate; a half-written
// rotation keeps the old one in service.
func TestTheChannelCertificateIsReloadedWhenItsFilesChange(t *testing.T) {
	dir := t.TempDir()
	first, err := framework.WriteServingCert(t.TempDir(), "127.0.0.1")
	require.NoError(t, err)
	second, err := framework.WriteServingCert(t.TempDir(), "127.0.0.1")
	require.NoError(t, err)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	install := func(sc framework.ServingCert, mtime time.Time) {
		for src, dst := range map[string]string{sc.CertFile: certFile, sc.KeyFile: keyFile} {
			data, err := os.ReadFile(src)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(dst, data, 0o600))
			require.NoError(t, os.Chtimes(dst, mtime, mtime))
		}
	}
	now := time.Now()
	install(first, now.Add(-time.Minute))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloader, err := newCertReloader(ctx, certFile, keyFile)
	require.NoError(t, err)
	// The channel's own path: listen, then serve with the reloader.
	s := &http.Server{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	listener, err := listen(s)
	require.NoError(t, err)
	serveListener(ctx, s, listener, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: reloader.GetCertificate})

	servedBy := func(ca string) error {
		pem, err := os.ReadFile(ca)
		require.NoError(t, err)
		roots := x509.NewCertPool()
		require.True(t, roots.AppendCertsFromPEM(pem))
		conn, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
		if err == nil {
			_ = conn.Close()
		}
		return err
	}
	require.NoError(t, servedBy(first.CAFile))
	require.Error(t, servedBy(second.CAFile))

	install(second, now)
	require.NoError(t, servedBy(second.CAFile), "the rotated certificate is not served")
	require.Error(t, servedBy(first.CAFile))

	// A rotation caught half way (the new certificate, the old key) keeps the last good pair.
	data, err := os.ReadFile(first.CertFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certFile, data, 0o600))
	require.NoError(t, os.Chtimes(certFile, now.Add(time.Minute), now.Add(time.Minute)))
	require.NoError(t, servedBy(second.CAFile), "a mismatched pair replaced the served certificate")
	// Once the key arrives, the new pair is served.
	install(first, now.Add(2*time.Minute))
	require.NoError(t, servedBy(first.CAFile))
}

// TestAStandbyListsTheClusterBeforeItLeads: while another GM holds the Lease, the standby's
// informers are already started and synced (a warm standby), so a failover does not wait for the
// cluster to be listed; the standby still serves no LC.
func TestAStandbyListsTheClusterBeforeItLeads(t *testing.T) {
	port, err := framework.FreePort()
	require.NoError(t, err)
	cfg := testConfig(t, port)
	cfg.LeaderElection.LeaseDuration.Duration = time.Hour
	cfg.LeaderElection.RenewDeadline.Duration = 30 * time.Minute
	c, kube := fakeClients()
	holder, duration, now := "gm-other", int32(3600), metav1.NewMicroTime(time.Now())
	_, err = kube.CoordinationV1().Leases("sedna").Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "sedna-gm", Namespace: "sedna"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &duration, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	sedna := c.sedna.(*sednafake.Clientset)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, "gm-standby", c) }()
	defer func() {
		cancel()
		<-done //nolint:errcheck // stopped on purpose; its error is not what this test checks
	}()
	listed := func(fake interface{ Actions() []k8stesting.Action }, resource string) bool {
		for _, a := range fake.Actions() {
			if a.GetVerb() == "watch" && a.GetResource().Resource == resource {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return listed(sedna, "datasets") && listed(kube, "pods") }, 20*time.Second, 50*time.Millisecond,
		"the standby never listed and watched Datasets and Pods")
	require.Equal(t, "gm-other", leaseHolder(t, kube))
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err == nil {
		_ = conn.Close()
		t.Fatal("the standby serves the LC channel")
	}
}

// TestProfilesServedWhenConfigured: GM serves Go's profiles on profilingAddress (opt-in, a
// loopback address) and the metrics address does not serve them.
func TestProfilesServedWhenConfigured(t *testing.T) {
	ports := make([]int, 3)
	for i := range ports {
		var err error
		ports[i], err = framework.FreePort()
		require.NoError(t, err)
	}
	cfg := testConfig(t, ports[0])
	cfg.MetricsAddress = "127.0.0.1:" + strconv.Itoa(ports[1])
	cfg.ProfilingAddress = "127.0.0.1:" + strconv.Itoa(ports[2])
	require.NoError(t, cfg.Validate())
	c, _ := fakeClients()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, "gm-a", c) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("GM stopped: %v", err)
		}
	}()
	get := func(addr string) (int, string) {
		resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	require.Eventually(t, func() bool {
		status, body := get(cfg.ProfilingAddress)
		return status == http.StatusOK && strings.Contains(body, os.Args[0])
	}, 20*time.Second, 50*time.Millisecond, "no profile on the profiling address")
	// The metrics server answers (so the refusal below is its own, not a connection error)...
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + cfg.MetricsAddress + "/metrics")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "the metrics address does not answer")
	// ...and serves no profile (it answers every path with the metrics).
	status, body := get(cfg.MetricsAddress)
	require.NotZero(t, status, "the metrics address did not answer: %s", body)
	require.NotContains(t, body, os.Args[0], "the metrics address serves profiles")
}
