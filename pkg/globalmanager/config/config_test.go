package config

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

func write(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gm.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestLoadUpstreamConfigWithTLS(t *testing.T) {
	cfg, err := Load(write(t, `
kubeConfig: ""
master: ""
namespace: ""
websocket:
  address: 0.0.0.0
  port: 9000
  tlsCertFile: /etc/sedna/tls.crt
  tlsKeyFile: /etc/sedna/tls.key
localController:
  server: http://localhost:9100
knowledgeBaseServer:
  server: http://kb.sedna:9020
minResyncPeriodSeconds: 60
features:
  FederatedLearning: {enabled: false}
  Dataset: {workers: 8}
leaderElection:
  leaseDuration: 20s
`))
	require.NoError(t, err)
	require.Equal(t, 60, cfg.MinResyncPeriodSeconds)
	require.Equal(t, float32(NoRateLimit), cfg.KubeAPI.QPS)
	require.Equal(t, float32(50), cfg.KubeAPI.EventQPS)
	require.False(t, cfg.FeatureEnabled("FederatedLearning"))
	require.True(t, cfg.FeatureEnabled("Dataset"))
	require.Equal(t, 8, cfg.FeatureWorkers("Dataset"))
	require.Equal(t, 2, cfg.FeatureWorkers("Model"))
	require.Equal(t, 8, cfg.FeatureWorkers("JointInference"), "sized from the scale measurement")
	require.Equal(t, 20*time.Second, cfg.LeaderElection.LeaseDuration.Duration)
	require.Equal(t, "sedna-gm", cfg.WebSocket.TokenAudience)
	require.Equal(t, "http://kb.sedna:9020", cfg.KnowledgeBaseServer.Server)
	require.Empty(t, cfg.KnowledgeBaseServer.TokenSecret)
}

// The shipped Lease timing: a 1 s retry period (a standby notices an expired Lease within
// 1-2.2 s), which client-go's leader election accepts with the default renew deadline.
func TestLeaderElectionDefaults(t *testing.T) {
	cfg, err := Load(write(t, "websocket: {tlsCertFile: a, tlsKeyFile: b}\n"))
	require.NoError(t, err)
	le := cfg.LeaderElection
	require.Equal(t, 15*time.Second, le.LeaseDuration.Duration)
	require.Equal(t, 10*time.Second, le.RenewDeadline.Duration)
	require.Equal(t, time.Second, le.RetryPeriod.Duration)
	_, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          &resourcelock.LeaseLock{LeaseMeta: metav1.ObjectMeta{Namespace: le.LeaseNamespace, Name: le.LeaseName}, LockConfig: resourcelock.ResourceLockConfig{Identity: "gm-a"}},
		LeaseDuration: le.LeaseDuration.Duration, RenewDeadline: le.RenewDeadline.Duration, RetryPeriod: le.RetryPeriod.Duration,
		Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) {}, OnStoppedLeading: func() {}},
	})
	require.NoError(t, err, "client-go accepts the defaults")

	// What passes validation, client-go accepts: the retry period jittered (×1.2) stays below
	// the renew deadline.
	cfg, err = Load(write(t, "websocket: {tlsCertFile: a, tlsKeyFile: b}\nleaderElection: {renewDeadline: 10s, retryPeriod: 8s}\n"))
	require.NoError(t, err)
	_, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          &resourcelock.LeaseLock{LeaseMeta: metav1.ObjectMeta{Namespace: "sedna", Name: "sedna-gm"}, LockConfig: resourcelock.ResourceLockConfig{Identity: "gm-a"}},
		LeaseDuration: cfg.LeaderElection.LeaseDuration.Duration, RenewDeadline: cfg.LeaderElection.RenewDeadline.Duration,
		RetryPeriod: cfg.LeaderElection.RetryPeriod.Duration,
		Callbacks:   leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) {}, OnStoppedLeading: func() {}},
	})
	require.NoError(t, err)
}

func TestLoadRejectsBadConfigs(t *testing.T) {
	cases := map[string]struct{ content, want string }{
		"unknown field":                   {"websocket: {tlsCertFile: a, tlsKeyFile: b}\ncolour: blue\n", `unknown field "colour"`},
		"no tls":                          {"websocket: {port: 9000}\n", "websocket.tlsCertFile and websocket.tlsKeyFile are required"},
		"bad port":                        {"websocket: {port: 70000, tlsCertFile: a, tlsKeyFile: b}\n", "websocket.port 70000 is not a port"},
		"bad duration":                    {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nleaderElection: {leaseDuration: soon}\n", `duration "soon"`},
		"lease order":                     {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nleaderElection: {leaseDuration: 5s, renewDeadline: 10s}\n", "leaseDuration (5s) > renewDeadline (10s)"},
		"retry within the jitter":         {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nleaderElection: {renewDeadline: 10s, retryPeriod: 9s}\n", "renewDeadline (10s) > 1.2 × retryPeriod (9s)"},
		"negative retry period":           {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nleaderElection: {retryPeriod: -1s}\n", "retryPeriod (-1s) must be positive"},
		"kubeconfig":                      {"kubeConfig: /nonexistent/kubeconfig\nwebsocket: {tlsCertFile: a, tlsKeyFile: b}\n", "kubeConfig"},
		"negative kube qps":               {"kubeAPI: {qps: -2}\nwebsocket: {tlsCertFile: a, tlsKeyFile: b}\n", "kubeAPI: qps (-2) must be positive or -1"},
		"negative event qps":              {"kubeAPI: {eventQPS: -1}\nwebsocket: {tlsCertFile: a, tlsKeyFile: b}\n", "eventQPS (-1)"},
		"negative review qps":             {"websocket: {tlsCertFile: a, tlsKeyFile: b, tokenReview: {qps: -1}}\n", "websocket.tokenReview: qps (-1)"},
		"kb not a url":                    {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nknowledgeBaseServer: {server: kb.sedna:9020}\n", `knowledgeBaseServer.server "kb.sedna:9020" is not an http(s) URL`},
		"kb token secret":                 {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nknowledgeBaseServer: {tokenSecret: Bad_Name}\n", `knowledgeBaseServer.tokenSecret "Bad_Name" is not a Secret name`},
		"profiling on every interface":    {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nprofilingAddress: \":6060\"\n", `profilingAddress ":6060" is not a loopback IP address`},
		"profiling on a routable address": {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nprofilingAddress: 10.0.0.1:6060\n", `profilingAddress "10.0.0.1:6060" is not a loopback IP address`},
		"profiling without a port":        {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nprofilingAddress: 127.0.0.1\n", `profilingAddress "127.0.0.1" is not a loopback IP address`},
		"profiling on a host name":        {"websocket: {tlsCertFile: a, tlsKeyFile: b}\nprofilingAddress: localhost:6060\n", `profilingAddress "localhost:6060" is not a loopback IP address`},
		"recheck too often":               {"websocket: {tlsCertFile: a, tlsKeyFile: b, tokenReview: {recheckPeriod: 10ms}}\n", "recheckPeriod 10ms is shorter than 1s"},
		"local verification of any service account": {"websocket: {tlsCertFile: a, tlsKeyFile: b, lcServiceAccounts: [], tokenReview: {localVerification: true}}\n",
			"websocket.tokenReview.localVerification is true but websocket.lcServiceAccounts is empty"},
		"service account without a namespace": {"websocket: {tlsCertFile: a, tlsKeyFile: b, lcServiceAccounts: [sedna-lc]}\n",
			`websocket.lcServiceAccounts: "sedna-lc" is not namespace/name`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(write(t, tc.content))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestProfilingOnLoopbackOnly(t *testing.T) {
	cfg, err := Load(write(t, "websocket: {tlsCertFile: a, tlsKeyFile: b}\n"))
	require.NoError(t, err)
	require.Empty(t, cfg.ProfilingAddress, "profiling is off by default")
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060"} {
		_, err := Load(write(t, "websocket: {tlsCertFile: a, tlsKeyFile: b}\nprofilingAddress: \""+addr+"\"\n"))
		require.NoError(t, err, addr)
	}
}

func TestTokenReviewSettings(t *testing.T) {
	cfg, err := Load(write(t, "websocket: {tlsCertFile: a, tlsKeyFile: b}\n"))
	require.NoError(t, err)
	tr := cfg.WebSocket.TokenReview
	require.Equal(t, float32(500), tr.QPS)
	require.Equal(t, 1000, tr.Burst)
	require.Equal(t, 10*time.Second, tr.CacheTTL.Duration)
	require.Equal(t, 10000, tr.CacheSize)
	require.Equal(t, 2*time.Minute, tr.RecheckPeriod.Duration)
	require.Equal(t, 20*time.Millisecond, cfg.WebSocket.ReportMarksBatchDelay.Duration)
	require.True(t, tr.LocalVerificationEnabled(), "LC tokens are verified locally by default")

	cfg, err = Load(write(t, "websocket: {tlsCertFile: a, tlsKeyFile: b, lcServiceAccounts: [], tokenReview: {localVerification: false}}\n"))
	require.NoError(t, err, "any service account's token is accepted through TokenReview")
	require.False(t, cfg.WebSocket.TokenReview.LocalVerificationEnabled())

	// A configuration from before local verification that allows any service account still
	// starts, with TokenReview for every token.
	cfg, err = Load(write(t, "websocket: {tlsCertFile: a, tlsKeyFile: b, lcServiceAccounts: []}\n"))
	require.NoError(t, err)
	require.False(t, cfg.WebSocket.TokenReview.LocalVerificationEnabled())

	cfg, err = Load(write(t, `
websocket:
  tlsCertFile: a
  tlsKeyFile: b
  reportMarksBatchDelay: 50ms
  tokenReview: {qps: 20, burst: 40, cacheTTL: -1s, cacheSize: 5, recheckPeriod: 30s}
`))
	require.NoError(t, err)
	tr = cfg.WebSocket.TokenReview
	require.Equal(t, float32(20), tr.QPS)
	require.Equal(t, 40, tr.Burst)
	require.Equal(t, -time.Second, tr.CacheTTL.Duration, "a negative TTL (no cache) is kept")
	require.Equal(t, 5, tr.CacheSize)
	require.Equal(t, 30*time.Second, tr.RecheckPeriod.Duration)
	require.Equal(t, 50*time.Millisecond, cfg.WebSocket.ReportMarksBatchDelay.Duration)
}
