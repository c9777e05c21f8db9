// Package app is sedna-gm's command: flags and config file → clients → leader election → the
// controller manager, the LC channel, and the metrics and health endpoints.
package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/cmd/internal/logging"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	sednascheme "github.com/sedna-go/sedna/pkg/client/clientset/versioned/scheme"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers"
	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// options are the command-line flags; set flags override the config file.
type options struct {
	configFile  string
	kubeconfig  string
	namespace   string
	leaderElect bool
	channelPort int
	identity    string
}

// NewCommand returns the sedna-gm command.
func NewCommand() *cobra.Command {
	opts := &options{}
	cmd := &cobra.Command{
		Use:   "sedna-gm",
		Short: "Sedna global manager: feature controllers and the LC channel",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := opts.config(cmd)
			if err != nil {
				return err
			}
			return Run(cmd.Context(), cfg, opts.identity)
		},
		SilenceUsage: true,
	}
	logging.KeepContextualLoggers(cmd)
	flags := cmd.Flags()
	flags.StringVar(&opts.configFile, "config", "", "YAML configuration file (see docs/gm-config.md); defaults apply when empty")
	flags.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig file; overrides kubeConfig in the config file")
	flags.StringVar(&opts.namespace, "namespace", "", "watch only this namespace; overrides namespace in the config file")
	flags.BoolVar(&opts.leaderElect, "leader-elect", true, "run only while holding the leader Lease; overrides leaderElection.enabled")
	flags.IntVar(&opts.channelPort, "channel-port", 0, "LC channel port; overrides websocket.port")
	flags.StringVar(&opts.identity, "identity", "", "leader-election identity (default: hostname_uuid)")
	return cmd
}

func (o *options) config(cmd *cobra.Command) (*config.Config, error) {
	cfg := &config.Config{}
	if o.configFile != "" {
		loaded, err := config.Load(o.configFile)
		if err != nil {
			return nil, err
		}
		cfg = loaded
	}
	flags := cmd.Flags()
	if flags.Changed("kubeconfig") {
		cfg.KubeConfig = o.kubeconfig
	}
	if flags.Changed("namespace") {
		cfg.Namespace = o.namespace
	}
	if flags.Changed("leader-elect") {
		cfg.LeaderElection.Enabled = &o.leaderElect
	}
	if flags.Changed("channel-port") {
		cfg.WebSocket.Port = o.channelPort
	}
	cfg.SetDefaults()
	return cfg, cfg.Validate()
}

// Run runs the GM until ctx ends or leadership is lost (an error: the process must restart).
func Run(ctx context.Context, cfg *config.Config, identity string) error {
	restConfig, err := clientcmd.BuildConfigFromFlags(cfg.Master, cfg.KubeConfig)
	if err != nil {
		return fmt.Errorf("building the Kubernetes client config: %w", err)
	}
	restConfig.QPS, restConfig.Burst = cfg.KubeAPI.QPS, cfg.KubeAPI.Burst
	restConfig.UserAgent = rest.DefaultKubernetesUserAgent() + " sedna-gm"
	kube, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("building the kube client: %w", err)
	}
	sedna, err := sednaclientset.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("building the sedna client: %w", err)
	}
	reviews, err := kubernetes.NewForConfig(reviewClientConfig(restConfig, cfg))
	if err != nil {
		return fmt.Errorf("building the token review client: %w", err)
	}
	events, err := kubernetes.NewForConfig(eventClientConfig(restConfig, cfg))
	if err != nil {
		return fmt.Errorf("building the event client: %w", err)
	}
	role, err := podRoleFromEnv(kube)
	if err != nil {
		klog.FromContext(ctx).Error(err, "GM's pod will carry no role label")
	}
	return run(ctx, cfg, identity, clients{kube: kube, sedna: sedna, reviews: reviews.AuthenticationV1().TokenReviews(),
		events: events.CoreV1(), role: role, issuer: messagelayer.APIServerIssuer{Client: reviews.Discovery().RESTClient()}})
}

// clients are what the GM talks to the API server with.
type clients struct {
	kube  kubernetes.Interface
	sedna sednaclientset.Interface
	// reviews has a rate budget of its own: LCs reconnecting after a failover must neither
	// queue behind the controllers nor starve them.
	reviews authenticationv1client.TokenReviewInterface
	// events writes GM's Events within a budget of its own (kubeAPI.eventQPS), so that Events
	// never take the controllers' requests; nil uses kube.
	events typedcorev1.EventsGetter
	// role labels GM's own pod leader or standby; nil outside a pod.
	role *podRole
	// issuer serves the service-account issuer's keys, for verifying LC tokens locally; nil
	// sends every token to TokenReview.
	issuer messagelayer.IssuerKeySource
}

// reviewClientConfig is the controllers' client config with the token review rate limits; the
// client built from it gets a rate limiter of its own.
func reviewClientConfig(restConfig *rest.Config, cfg *config.Config) *rest.Config {
	return budgetClientConfig(restConfig, cfg.WebSocket.TokenReview.QPS, cfg.WebSocket.TokenReview.Burst, "token-review")
}

// eventClientConfig is the controllers' client config with the Event rate limits.
func eventClientConfig(restConfig *rest.Config, cfg *config.Config) *rest.Config {
	return budgetClientConfig(restConfig, cfg.KubeAPI.EventQPS, cfg.KubeAPI.EventBurst, "events")
}

// budgetClientConfig copies restConfig with rate limits of its own, named in the user agent.
func budgetClientConfig(restConfig *rest.Config, qps float32, burst int, name string) *rest.Config {
	budget := rest.CopyConfig(restConfig)
	budget.QPS, budget.Burst = qps, burst
	budget.RateLimiter = nil
	budget.UserAgent = restConfig.UserAgent + " " + name
	return budget
}

func run(ctx context.Context, cfg *config.Config, identity string, c clients) error {
	logger := klog.FromContext(ctx)
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerWorkqueueMetrics(registry)
	channelMetrics := messagelayer.NewMetrics(registry)
	hub := messagelayer.NewHub(messagelayer.Options{
		MaxFrameBytes:     cfg.WebSocket.MaxFrameBytes,
		CredentialRecheck: cfg.WebSocket.TokenReview.RecheckPeriod.Duration,
	}, channelMetrics)
	auth, err := authenticator(ctx, cfg, c, channelMetrics)
	if err != nil {
		return err
	}

	// A restarted leader's pod still carries the leader label: it is a standby until it leads
	// again, and says so before it serves anything (else the gm Service would route LCs to it).
	// Any error is retried for up to the lease duration (an API server restarting, a webhook
	// timing out); past that GM exits with ErrRoleNotLabelled and is restarted.
	labelLimit := cfg.LeaderElection.LeaseDuration.Duration
	if err := c.role.setWithin(ctx, RoleStandby, labelLimit); err != nil {
		return err
	}
	var ready atomic.Bool
	servers := []*http.Server{
		{Addr: cfg.MetricsAddress, Handler: promhttp.HandlerFor(registry, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second},
		{Addr: cfg.HealthAddress, Handler: healthHandler(&ready), ReadHeaderTimeout: 10 * time.Second},
	}
	if cfg.ProfilingAddress != "" {
		// Opt-in, loopback only (config.Validate): Go's profiles of this process.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		servers = append(servers, &http.Server{Addr: cfg.ProfilingAddress, Handler: mux, ReadHeaderTimeout: 10 * time.Second})
	}
	for _, s := range servers {
		if err := serve(ctx, s, nil); err != nil {
			return err
		}
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	events := c.events
	if events == nil {
		events = c.kube.CoreV1()
	}
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: events.Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(sednascheme.Scheme, corev1.EventSource{Component: "sedna-gm"})

	deps := runtime.Dependencies{
		KubeClient: c.kube, SednaClient: c.sedna, Downstream: hub, Recorder: recorder,
		Models: runtime.NewBindings(), Secrets: runtime.NewBindings(),
		LCServer: cfg.LocalController.Server, KBServer: cfg.KnowledgeBaseServer.Server,
		KBTokenSecret: cfg.KnowledgeBaseServer.TokenSecret, Metrics: registry,
		NodeChannel: hub.NodeStates(),
	}
	manager := controllers.NewManager(cfg, controllers.NewRegistry(), deps, func(kind string, r runtime.ReportReceiver) {
		hub.RegisterHandler(kind, r)
	})
	lead := func(leaderCtx context.Context) error {
		// Everything the channel needs is checked before the controllers start: a leader that
		// cannot serve LCs gives the Lease up (the process exits) instead of holding it. So does
		// a leader whose pod cannot be labelled leader within the lease duration: the gm Service
		// selects that label, so no LC would reach it; abdicate ends ctx with the cause.
		ctx, abdicate := context.WithCancelCause(leaderCtx)
		defer abdicate(nil)
		channel := &http.Server{
			Addr:              net.JoinHostPort(cfg.WebSocket.Address, strconv.Itoa(cfg.WebSocket.Port)),
			Handler:           messagelayer.NewServer(ctx, hub, auth),
			ReadHeaderTimeout: 10 * time.Second,
		}
		certs, err := newCertReloader(ctx, cfg.WebSocket.TLSCertFile, cfg.WebSocket.TLSKeyFile)
		if err != nil {
			return err
		}
		listener, err := listen(channel)
		if err != nil {
			return fmt.Errorf("serving the LC channel: %w", err)
		}
		serving := false
		defer func() {
			if !serving {
				_ = listener.Close() // never served; nothing else holds it
			}
		}()
		marks := &messagelayer.ConfigMapMarks{
			Client: c.kube.CoreV1().ConfigMaps(cfg.LeaderElection.LeaseNamespace),
			Name:   cfg.LeaderElection.LeaseName + "-report-marks",
			Nodes:  c.kube.CoreV1().Nodes(),
		}
		if err := hub.UseMarks(ctx, marks, cfg.WebSocket.ReportMarksBatchDelay.Duration); err != nil {
			return err
		}
		err = manager.Run(ctx, func() {
			serving = true
			serveListener(ctx, channel, listener, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate})
			ready.Store(true)
			logger.Info("Serving LCs", "address", channel.Addr)
			go func() {
				if err := c.role.setWithin(ctx, RoleLeader, labelLimit); err != nil && errors.Is(err, ErrRoleNotLabelled) {
					logger.Error(err, "Giving up the Lease: this leader's pod lacks the label the gm Service selects, so no LC reaches it; a standby takes over",
						"label", RoleLabel+"="+RoleLeader)
					abdicate(err)
				}
			}()
		})
		if cause := context.Cause(ctx); errors.Is(cause, ErrRoleNotLabelled) {
			return cause
		}
		return err
	}
	if !*cfg.LeaderElection.Enabled {
		return lead(ctx)
	}
	// A warm standby: the caches fill (reads only) while another GM leads, so that a failover
	// does not wait for the cluster to be listed before LCs are served.
	go func() {
		if err := manager.Start(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Starting the controllers' informers failed; leading will fail with it")
		}
	}()
	return runWithLeaderElection(ctx, cfg, c.kube, identity, lead)
}

// runWithLeaderElection runs lead while holding the Lease and returns once lead has returned:
// lead's error, or an error when the Lease was lost while ctx was still live.
func runWithLeaderElection(ctx context.Context, cfg *config.Config, kube kubernetes.Interface, identity string,
	lead func(context.Context) error) error {
	logger := klog.FromContext(ctx)
	if identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("getting the hostname for the leader identity: %w", err)
		}
		identity = host + "_" + uuid.NewString()
	}
	le := cfg.LeaderElection
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.LeaseNamespace, le.LeaseName,
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: identity})
	if err != nil {
		return fmt.Errorf("creating the leader lock: %w", err)
	}
	leaderCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The elector runs lead in a goroutine of its own and does not wait for it: its result
	// comes back on a channel, and Run waits for it so no controller outlives the Lease.
	leadDone := make(chan error, 1)
	// started and finished decide, under mu, whether lead runs at all: the elector may start
	// it just after Run returned, and then it must not.
	var mu sync.Mutex
	started, finished := false, false
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration.Duration,
		RenewDeadline:   le.RenewDeadline.Duration,
		RetryPeriod:     le.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		Name:            le.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				mu.Lock()
				if finished {
					mu.Unlock()
					return
				}
				started = true
				mu.Unlock()
				logger.Info("Became the leader", "identity", identity)
				err := lead(ctx)
				cancel()
				leadDone <- err
			},
			OnStoppedLeading: func() {
				logger.Info("Stopped leading", "identity", identity)
				cancel()
			},
			OnNewLeader: func(current string) {
				if current != identity {
					logger.Info("Standing by", "leader", current)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("configuring leader election: %w", err)
	}
	elector.Run(leaderCtx)
	mu.Lock()
	finished = true
	led := started
	mu.Unlock()
	if !led {
		return nil
	}
	if err := <-leadDone; err != nil {
		return err
	}
	if ctx.Err() == nil {
		return errors.New("lost the leader lease")
	}
	return nil
}

// authenticator picks local verification with TokenReview for what it cannot decide, TokenReview
// alone, or static tokens on development clusters. Local verification starts at once, also on a
// standby, so that a new leader admits its LCs with the keys and pods already known.
func authenticator(ctx context.Context, cfg *config.Config, c clients, metrics *messagelayer.Metrics) (messagelayer.Authenticator, error) {
	logger := klog.FromContext(ctx)
	if cfg.WebSocket.StaticTokensFile != "" {
		logger.Info("WARNING: static LC tokens are enabled. Tokens never expire and are bound to nothing; use this on development clusters only",
			"file", cfg.WebSocket.StaticTokensFile)
		tokens, err := readStaticTokens(cfg.WebSocket.StaticTokensFile)
		if err != nil {
			return nil, err
		}
		return &messagelayer.StaticTokenAuthenticator{Tokens: tokens}, nil
	}
	tr := cfg.WebSocket.TokenReview
	var review messagelayer.Authenticator = &messagelayer.TokenReviewAuthenticator{
		Client:          c.reviews,
		Audiences:       []string{cfg.WebSocket.TokenAudience},
		ServiceAccounts: cfg.WebSocket.LCServiceAccounts,
	}
	if tr.CacheTTL.Duration > 0 {
		review = &messagelayer.CachingAuthenticator{Next: review, TTL: tr.CacheTTL.Duration, MaxEntries: tr.CacheSize}
	}
	switch {
	case !tr.LocalVerificationEnabled():
		logger.Info("LC tokens are checked by TokenReview only: websocket.tokenReview.localVerification is false")
		return review, nil
	case c.issuer == nil:
		logger.Info("LC tokens are checked by TokenReview only: no service-account issuer to read keys from")
		return review, nil
	}
	identities, err := messagelayer.NewInformerLCIdentities(c.kube, cfg.WebSocket.LCServiceAccounts)
	if err != nil {
		return nil, fmt.Errorf("websocket.lcServiceAccounts: %w", err)
	}
	keys := &messagelayer.IssuerKeys{Source: c.issuer}
	go runLocalVerification(ctx, keys, identities, metrics)
	return &messagelayer.LocalFirstAuthenticator{
		Local: &messagelayer.LocalTokenVerifier{Audience: cfg.WebSocket.TokenAudience, ServiceAccounts: cfg.WebSocket.LCServiceAccounts,
			Keys: keys, Identities: identities},
		Fallback: review,
		Metrics:  metrics,
	}, nil
}

// keyRefreshPeriod is how often GM reads the service-account issuer's keys again: a key the API
// server stops publishing stops verifying tokens here within this period (and at the latest
// after IssuerKeys.MaxAge without a successful read).
const keyRefreshPeriod = time.Minute

// runLocalVerification reads the issuer's keys every keyRefreshPeriod and, once they and the LC
// pods can be read, starts the pod informers. It logs when the mode changes (the first time
// included) with the reason, and keeps the mode in sedna_gm_channel_local_token_verification.
func runLocalVerification(ctx context.Context, keys *messagelayer.IssuerKeys, identities *messagelayer.InformerLCIdentities,
	metrics *messagelayer.Metrics) {
	logger := klog.FromContext(ctx)
	logged, local, started := false, false, false
	keys.Run(ctx, keyRefreshPeriod, func(err error) {
		if err == nil && !started {
			if err = identities.CanWatch(ctx); err == nil {
				identities.Start(ctx)
				started = true
				// The mode said below is the one in use: tokens go to TokenReview until the
				// informers have synced.
				_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true,
					func(context.Context) (bool, error) { return identities.Synced(), nil })
			}
		}
		if ctx.Err() != nil {
			return
		}
		// Keys read earlier stay in use for IssuerKeys.MaxAge when a read fails.
		_, fresh := keys.Issuer()
		now := started && fresh && identities.Synced()
		if err != nil && now {
			logger.V(2).Info("Could not read the service-account issuer's keys again; using those read before", "err", err)
		}
		if now {
			metrics.LocalTokenVerification.Set(1)
		} else {
			metrics.LocalTokenVerification.Set(0)
		}
		if logged && now == local {
			return
		}
		logged, local = true, now
		if now {
			issuer, _ := keys.Issuer()
			logger.Info("LC tokens are verified locally with the service-account issuer's keys; TokenReview only for tokens that cannot be decided here",
				"issuer", issuer)
			return
		}
		logger.Info("LC tokens are checked by TokenReview: GM cannot verify them itself (grant get on /.well-known/openid-configuration and /openid/v1/jwks, and list/watch on the LC pods and service accounts, as build/gm/rbac.yaml does)",
			"err", err)
	})
}

func readStaticTokens(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading static tokens: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only file
	tokens := map[string]string{}
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		token, node, ok := strings.Cut(text, ",")
		if !ok || strings.TrimSpace(token) == "" || strings.TrimSpace(node) == "" {
			return nil, fmt.Errorf("%s line %d: want token,node", path, line)
		}
		tokens[strings.TrimSpace(token)] = strings.TrimSpace(node)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading static tokens: %w", err)
	}
	return tokens, nil
}

func healthHandler(ready *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		// 200 only on the leader serving LCs (synced caches, primed state), for monitoring. The
		// readiness probe is /healthz (build/gm/deployment.yaml): a standby is Ready too, or no
		// rollout would complete; the gm Service reaches the leader by its RoleLabel instead.
		if !ready.Load() {
			http.Error(w, "not leading or not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}

// serve listens now (so address errors surface) and serves until ctx ends.
func serve(ctx context.Context, s *http.Server, tlsConfig *tls.Config) error {
	listener, err := listen(s)
	if err != nil {
		return err
	}
	serveListener(ctx, s, listener, tlsConfig)
	return nil
}

// listen binds s.Addr and records the bound address in it.
func listen(s *http.Server) (net.Listener, error) {
	listener, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", s.Addr, err)
	}
	s.Addr = listener.Addr().String()
	return listener, nil
}

// serveListener serves s on listener until ctx ends, over TLS when tlsConfig is set (its
// GetCertificate supplies the certificate).
func serveListener(ctx context.Context, s *http.Server, listener net.Listener, tlsConfig *tls.Config) {
	s.TLSConfig = tlsConfig
	go func() {
		var err error
		if tlsConfig != nil {
			err = s.ServeTLS(listener, "", "")
		} else {
			err = s.Serve(listener)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.FromContext(ctx).Error(err, "Server stopped", "address", s.Addr)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(shutdownCtx) // the process is stopping; nothing to do with the error
	}()
}
