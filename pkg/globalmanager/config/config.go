// Package config is sedna-gm's configuration: a YAML file with documented defaults, read with
// strict field checking. Upstream's keys (kubeConfig, master, namespace, websocket,
// localController, knowledgeBaseServer, minResyncPeriodSeconds) keep their meaning, so an
// upstream gm.yaml still works.
package config

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/leaderelection"

	"sigs.k8s.io/yaml"
)

// Config is sedna-gm's configuration.
type Config struct {
	// KubeConfig is a kubeconfig file; empty means in-cluster (unless Master is set).
	KubeConfig string `json:"kubeConfig,omitempty"`
	Master     string `json:"master,omitempty"`
	// Namespace limits GM to one namespace; empty means all.
	Namespace string `json:"namespace,omitempty"`
	// KubeAPI sizes the client. By default GM sets no client-side rate limit and relies on the
	// API server's Priority and Fairness, which queues GM's requests with the other clients'
	// (client-go's default 5 QPS, and even 100, throttles GM far below what the server allows).
	KubeAPI KubeAPI `json:"kubeAPI,omitempty"`
	// Features enables features and sets their worker counts; a feature not listed runs with
	// the defaults.
	Features  map[string]Feature `json:"features,omitempty"`
	WebSocket WebSocket          `json:"websocket,omitempty"`
	// LocalController.Server is the LC URL given to workers that cannot derive it from their
	// node (the default reaches the LC on the worker's node through the downward API).
	LocalController     Server         `json:"localController,omitempty"`
	KnowledgeBaseServer KnowledgeBase  `json:"knowledgeBaseServer,omitempty"`
	LeaderElection      LeaderElection `json:"leaderElection,omitempty"`
	// MetricsAddress serves /metrics; HealthAddress serves /healthz and /readyz.
	MetricsAddress string `json:"metricsAddress,omitempty"`
	HealthAddress  string `json:"healthAddress,omitempty"`
	// ProfilingAddress, when set, serves Go's profiles (/debug/pprof/) there. Off by default;
	// a profile reveals the process's internals and costs CPU, so only a loopback address is
	// accepted: reach it from GM's own pod (kubectl port-forward), never from the network.
	ProfilingAddress string `json:"profilingAddress,omitempty"`
	// MinResyncPeriodSeconds: informers resync at a random period in [min, 2*min).
	MinResyncPeriodSeconds int `json:"minResyncPeriodSeconds,omitempty"`
}

// KubeAPI tunes the Kubernetes client.
type KubeAPI struct {
	// QPS and Burst are the controllers' client-side rate limits; QPS -1 (the default) sets none.
	QPS   float32 `json:"qps,omitempty"`
	Burst int     `json:"burst,omitempty"`
	// EventQPS and EventBurst are the rate limits of a client of its own that writes GM's Events:
	// Events never take the controllers' share of the API server, and beyond their budget they
	// are dropped (client-go drops Events when its queue is full).
	EventQPS   float32 `json:"eventQPS,omitempty"`
	EventBurst int     `json:"eventBurst,omitempty"`
}

// NoRateLimit is the KubeAPI.QPS that sets no client-side rate limit.
const NoRateLimit = -1

// Feature configures one feature controller.
type Feature struct {
	Enabled *bool `json:"enabled,omitempty"`
	Workers int   `json:"workers,omitempty"`
}

// WebSocket configures the LC channel.
type WebSocket struct {
	Address string `json:"address,omitempty"`
	Port    int    `json:"port,omitempty"`
	// TLSCertFile and TLSKeyFile are GM's serving certificate; required.
	TLSCertFile string `json:"tlsCertFile,omitempty"`
	TLSKeyFile  string `json:"tlsKeyFile,omitempty"`
	// TokenAudience is the audience LC tokens must be issued for.
	TokenAudience string `json:"tokenAudience,omitempty"`
	// LCServiceAccounts ("namespace/name") may connect; empty means any pod-bound token (then
	// every token goes to TokenReview: local verification needs the list).
	LCServiceAccounts []string `json:"lcServiceAccounts,omitempty"`
	// StaticTokensFile maps tokens to nodes ("token,node" lines) instead of TokenReview. For
	// development clusters only; GM logs a warning when it is set.
	StaticTokensFile string `json:"staticTokensFile,omitempty"`
	// MaxFrameBytes bounds one channel frame.
	MaxFrameBytes int `json:"maxFrameBytes,omitempty"`
	// TokenReview tunes how LC tokens are reviewed.
	TokenReview TokenReview `json:"tokenReview,omitempty"`
	// ReportMarksBatchDelay is how long GM gathers LC reports before persisting, in one write,
	// the marks that keep the next GM from handling them again; their acks wait for the write.
	ReportMarksBatchDelay Duration `json:"reportMarksBatchDelay,omitempty"`
}

// TokenReview tunes LC authentication. Reviews use a client of their own, so LCs reconnecting
// together neither wait behind the controllers' requests nor slow them down.
type TokenReview struct {
	// QPS and Burst are the review client's rate limits.
	QPS   float32 `json:"qps,omitempty"`
	Burst int     `json:"burst,omitempty"`
	// CacheTTL is how long an accepted token is remembered (never past its expiry); 0 is the
	// default, a negative value disables the cache.
	CacheTTL Duration `json:"cacheTTL,omitempty"`
	// CacheSize bounds the remembered tokens.
	CacheSize int `json:"cacheSize,omitempty"`
	// RecheckPeriod is how often a connected LC's token is reviewed again, which closes the
	// connection of an LC whose pod is gone. The recheck always asks the API server: the cache
	// only serves connects.
	RecheckPeriod Duration `json:"recheckPeriod,omitempty"`
	// LocalVerification makes GM verify LC tokens itself, as the API server does: the JWT's
	// signature with the service-account issuer's public keys (read from the API server's
	// /.well-known/openid-configuration and /openid/v1/jwks), and the token's service account
	// and pod against GM's informers of the LC pods. A connect and a recheck then cost no
	// TokenReview; tokens it cannot decide, and all tokens while the keys cannot be read, go to
	// TokenReview. Default: true when lcServiceAccounts names any (it does by default); true with
	// an empty lcServiceAccounts is refused.
	LocalVerification *bool `json:"localVerification,omitempty"`
}

// LocalVerificationEnabled reports whether GM verifies LC tokens itself (the default).
func (tr TokenReview) LocalVerificationEnabled() bool {
	return tr.LocalVerification == nil || *tr.LocalVerification
}

// Server is a URL.
type Server struct {
	Server string `json:"server,omitempty"`
}

// KnowledgeBase is the knowledge base lifelong-learning workers use.
type KnowledgeBase struct {
	// Server is the KB's URL, given to the workers as KB_SERVER.
	Server string `json:"server,omitempty"`
	// TokenSecret names a Secret, in each lifelong learning job's namespace, whose key "token" is
	// the KB's bearer token; workers get it as SEDNA_KB_TOKEN (by reference, optional: a
	// namespace without the Secret runs its workers without a token). Empty gives none.
	TokenSecret string `json:"tokenSecret,omitempty"`
}

// LeaderElection configures the Lease that makes one GM active.
type LeaderElection struct {
	Enabled        *bool    `json:"enabled,omitempty"`
	LeaseName      string   `json:"leaseName,omitempty"`
	LeaseNamespace string   `json:"leaseNamespace,omitempty"`
	LeaseDuration  Duration `json:"leaseDuration,omitempty"`
	RenewDeadline  Duration `json:"renewDeadline,omitempty"`
	RetryPeriod    Duration `json:"retryPeriod,omitempty"`
}

// Duration is a time.Duration written as "15s".
type Duration struct{ time.Duration }

// UnmarshalJSON parses "15s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes "15s".
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// Default returns the configuration with every default filled in.
func Default() *Config {
	c := &Config{}
	c.SetDefaults()
	return c
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.KubeAPI.QPS == 0 {
		c.KubeAPI.QPS = NoRateLimit
	}
	if c.KubeAPI.Burst == 0 {
		c.KubeAPI.Burst = 200
	}
	if c.KubeAPI.EventQPS == 0 {
		c.KubeAPI.EventQPS = 50
	}
	if c.KubeAPI.EventBurst == 0 {
		c.KubeAPI.EventBurst = 100
	}
	if c.WebSocket.Address == "" {
		c.WebSocket.Address = "0.0.0.0"
	}
	if c.WebSocket.Port == 0 {
		c.WebSocket.Port = 9000
	}
	if c.WebSocket.TokenAudience == "" {
		c.WebSocket.TokenAudience = "sedna-gm"
	}
	if c.WebSocket.LCServiceAccounts == nil {
		c.WebSocket.LCServiceAccounts = []string{"sedna/sedna-lc"}
	}
	tr := &c.WebSocket.TokenReview
	// Every LC reconnects at once when a new GM leads: at 50 reviews/s, 1,000 LCs took 18 s to be
	// admitted (docs/performance.md). Reviews store nothing; the API server's priority and
	// fairness protects it, as for the controllers' client.
	if tr.QPS == 0 {
		tr.QPS = 500
	}
	if tr.Burst == 0 {
		tr.Burst = 1000
	}
	if tr.CacheTTL.Duration == 0 {
		tr.CacheTTL.Duration = 10 * time.Second
	}
	if tr.CacheSize == 0 {
		tr.CacheSize = 10000
	}
	if tr.RecheckPeriod.Duration == 0 {
		tr.RecheckPeriod.Duration = 2 * time.Minute
	}
	if tr.LocalVerification == nil {
		// Local verification watches the LC service accounts' pods; a configuration that allows
		// any service account (an empty list, as before local verification existed) keeps to
		// TokenReview rather than failing to start after an upgrade.
		local := len(c.WebSocket.LCServiceAccounts) > 0
		tr.LocalVerification = &local
	}
	if c.WebSocket.ReportMarksBatchDelay.Duration == 0 {
		c.WebSocket.ReportMarksBatchDelay.Duration = 20 * time.Millisecond
	}
	if c.LocalController.Server == "" {
		c.LocalController.Server = "http://localhost:9100"
	}
	if c.KnowledgeBaseServer.Server == "" {
		c.KnowledgeBaseServer.Server = "http://kb.sedna:9020"
	}
	le := &c.LeaderElection
	if le.Enabled == nil {
		enabled := true
		le.Enabled = &enabled
	}
	if le.LeaseName == "" {
		le.LeaseName = "sedna-gm"
	}
	if le.LeaseNamespace == "" {
		le.LeaseNamespace = "sedna"
	}
	if le.LeaseDuration.Duration == 0 {
		le.LeaseDuration.Duration = 15 * time.Second
	}
	if le.RenewDeadline.Duration == 0 {
		le.RenewDeadline.Duration = 10 * time.Second
	}
	if le.RetryPeriod.Duration == 0 {
		// 1 s rather than the 2 s of Kubernetes' own components: a standby notices the Lease
		// expired only at its next try (every 1-2.2 s with client-go's jitter, was 2-4.4 s), and
		// notices the leader's last renewal as late, so this shortens a failover by ~1 s on
		// average and ~4 s at worst. Cost: the leader renews every second (one Lease update a
		// second instead of one every two), the standby reads the Lease about as often.
		le.RetryPeriod.Duration = time.Second
	}
	if c.MetricsAddress == "" {
		c.MetricsAddress = ":8080"
	}
	if c.HealthAddress == "" {
		c.HealthAddress = ":8081"
	}
	if c.MinResyncPeriodSeconds == 0 {
		c.MinResyncPeriodSeconds = 30
	}
}

// FeatureEnabled reports whether a feature runs (features run unless disabled).
func (c *Config) FeatureEnabled(name string) bool {
	f, ok := c.Features[name]
	return !ok || f.Enabled == nil || *f.Enabled
}

// defaultWorkers are the measured worker counts (docs/performance.md, "GM convergence"): with no
// client-side rate limit a joint inference sync waits on about five API round trips, and at
// 1,000 services 2 workers left GM at 0.40 of a bare writer's speed, 8 at 0.61; 16 gained no
// time over 8 on 2 cores.
var defaultWorkers = map[string]int{"JointInference": 8}

// FeatureWorkers is the number of workers of a feature: the configured one, the measured default
// of the feature, or 2.
func (c *Config) FeatureWorkers(name string) int {
	if f, ok := c.Features[name]; ok && f.Workers > 0 {
		return f.Workers
	}
	if n, ok := defaultWorkers[name]; ok {
		return n
	}
	return 2
}

// Load reads a YAML configuration file, rejecting unknown fields, and fills defaults.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c := &Config{}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("parsing config %s: %w", path, err)
	}
	c.SetDefaults()
	return c, c.Validate()
}

// Validate checks values that have no usable default.
func (c *Config) Validate() error {
	if c.KubeConfig != "" {
		if _, err := os.Stat(c.KubeConfig); err != nil {
			return fmt.Errorf("kubeConfig: %w", err)
		}
	}
	if c.WebSocket.Port < 1 || c.WebSocket.Port > 65535 {
		return fmt.Errorf("websocket.port %d is not a port", c.WebSocket.Port)
	}
	if c.WebSocket.TLSCertFile == "" || c.WebSocket.TLSKeyFile == "" {
		return fmt.Errorf("websocket.tlsCertFile and websocket.tlsKeyFile are required: the LC channel is served over TLS only")
	}
	if k := c.KubeAPI; (k.QPS < 0 && k.QPS != NoRateLimit) || k.Burst < 0 || k.EventQPS <= 0 || k.EventBurst <= 0 {
		return fmt.Errorf("kubeAPI: qps (%v) must be positive or -1 (no client-side limit), burst (%d) not negative, eventQPS (%v) and eventBurst (%d) positive",
			k.QPS, k.Burst, k.EventQPS, k.EventBurst)
	}
	tr := c.WebSocket.TokenReview
	if tr.QPS < 0 || tr.Burst < 0 || tr.CacheSize < 0 {
		return fmt.Errorf("websocket.tokenReview: qps (%v), burst (%d) and cacheSize (%d) must not be negative", tr.QPS, tr.Burst, tr.CacheSize)
	}
	if tr.RecheckPeriod.Duration < time.Second {
		return fmt.Errorf("websocket.tokenReview.recheckPeriod %s is shorter than 1s", tr.RecheckPeriod)
	}
	if tr.LocalVerificationEnabled() && c.WebSocket.StaticTokensFile == "" {
		if len(c.WebSocket.LCServiceAccounts) == 0 {
			return fmt.Errorf("websocket.tokenReview.localVerification is true but websocket.lcServiceAccounts is empty: GM watches the pods of those service accounts only; name them, or leave localVerification unset (or false) to accept any service account's pod-bound token through TokenReview")
		}
	}
	for _, sa := range c.WebSocket.LCServiceAccounts {
		if ns, name, ok := strings.Cut(sa, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("websocket.lcServiceAccounts: %q is not namespace/name", sa)
		}
	}
	if c.WebSocket.ReportMarksBatchDelay.Duration < 0 {
		return fmt.Errorf("websocket.reportMarksBatchDelay %s is negative", c.WebSocket.ReportMarksBatchDelay)
	}
	if err := c.KnowledgeBaseServer.validate(); err != nil {
		return err
	}
	if c.ProfilingAddress != "" && !loopback(c.ProfilingAddress) {
		return fmt.Errorf("profilingAddress %q is not a loopback IP address with a port (127.0.0.1:<port> or [::1]:<port>)", c.ProfilingAddress)
	}
	le := c.LeaderElection
	// client-go's leader election jitters the retry period up to leaderelection.JitterFactor (1.2)
	// times and refuses a renew deadline that does not exceed that: checked here so GM names the
	// fields at start-up instead.
	if *le.Enabled && (le.LeaseDuration.Duration <= 0 || le.RenewDeadline.Duration <= 0 || le.RetryPeriod.Duration <= 0) {
		return fmt.Errorf("leaderElection: leaseDuration (%s), renewDeadline (%s) and retryPeriod (%s) must be positive",
			le.LeaseDuration, le.RenewDeadline, le.RetryPeriod)
	}
	if *le.Enabled && !(le.LeaseDuration.Duration > le.RenewDeadline.Duration &&
		float64(le.RenewDeadline.Duration) > leaderelection.JitterFactor*float64(le.RetryPeriod.Duration)) {
		return fmt.Errorf("leaderElection: leaseDuration (%s) > renewDeadline (%s) > %.1f × retryPeriod (%s) must hold",
			le.LeaseDuration, le.RenewDeadline, leaderelection.JitterFactor, le.RetryPeriod)
	}
	return nil
}

// loopback reports whether addr is host:port with a loopback IP literal. A name (even
// "localhost") is refused: it is resolved only when GM listens, and without a hosts entry the
// resolver's search domains may turn it into a routable address.
func loopback(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validate checks that the KB is an http(s) URL with a host and the token Secret a valid name:
// both reach every lifelong-learning worker's env.
func (kb KnowledgeBase) validate() error {
	u, err := url.Parse(kb.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("knowledgeBaseServer.server %q is not an http(s) URL with a host (and no user info, query or fragment)", kb.Server)
	}
	if kb.TokenSecret != "" {
		if errs := validation.IsDNS1123Subdomain(kb.TokenSecret); len(errs) > 0 {
			return fmt.Errorf("knowledgeBaseServer.tokenSecret %q is not a Secret name: %s", kb.TokenSecret, strings.Join(errs, "; "))
		}
	}
	return nil
}
