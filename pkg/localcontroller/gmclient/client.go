package gmclient

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// nodeNameHeader is the header GM compares with the node of the token.
const nodeNameHeader = "Node-Name"

// maxTokenBytes bounds what is read from TokenFile; projected tokens are a few kilobytes.
const maxTokenBytes = 64 << 10

// Client is the LC's connection to GM. Create it with New and run it with Run.
type Client struct {
	opts    Options
	url     string
	store   *store.Store
	handler Handler
	metrics *metrics

	// notify wakes the outbox sender; one pending wake-up is enough.
	notify    chan struct{}
	connected atomic.Bool

	// storeID tells GM which numbering the outbox's sequence numbers belong to.
	storeID string

	// token and rootCAs are TokenFile and CAFile as last read; rootCAs is nil without a CAFile.
	token   *fileCache[string]
	rootCAs *fileCache[*x509.CertPool]

	// Seams for tests, set before Run.
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(limit time.Duration) time.Duration
}

// New validates opts and returns a client that is not yet connected.
func New(opts Options, st *store.Store, h Handler) (*Client, error) {
	if st == nil {
		return nil, errors.New("creating GM client: store is nil")
	}
	if h == nil {
		return nil, errors.New("creating GM client: handler is nil")
	}
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("creating GM client: %w", err)
	}
	u, err := ParseGMAddress(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("creating GM client: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("creating GM client: %w", err)
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(newOutboxCollector(st)); err != nil {
			return nil, fmt.Errorf("creating GM client: registering outbox metrics: %w", err)
		}
	}
	storeID, err := storeIdentity(st)
	if err != nil {
		return nil, fmt.Errorf("creating GM client: %w", err)
	}
	var rootCAs *fileCache[*x509.CertPool]
	if opts.CAFile != "" {
		rootCAs = newFileCache(opts.CAFile, readCABundle)
	}
	return &Client{
		storeID: storeID,
		token:   newFileCache(opts.TokenFile, readToken),
		rootCAs: rootCAs,
		opts:    opts,
		url:     u,
		store:   st,
		handler: h,
		metrics: m,
		notify:  make(chan struct{}, 1),
		now:     time.Now,
		sleep:   sleepContext,
		jitter:  fullJitter,
	}, nil
}

// Notify wakes the outbox sender. Call it after store.Enqueue (EnqueueReport); it never blocks.
// Without it a new report still goes out at the next periodic check.
func (c *Client) Notify() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Connected reports whether a websocket to GM is established now. It says nothing about
// whether the snapshot has been applied yet.
func (c *Client) Connected() bool { return c.connected.Load() }

// Run dials GM, serves the connection and redials with backoff until ctx ends. It returns once
// every goroutine it started has stopped.
func (c *Client) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithValues("gm", c.url, "node", c.opts.NodeName)
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting the GM client")
	defer logger.Info("Stopped the GM client")

	failures := 0
	// Until failoverUntil the backoff is capped at FailoverBackoff: a stable connection ended,
	// most likely because GM is failing over.
	var failoverUntil time.Time
	for ctx.Err() == nil {
		lived, err := c.connectAndServe(ctx)
		if ctx.Err() != nil {
			return
		}
		if lived > stableConnection {
			failures = 0
			failoverUntil = c.now().Add(c.opts.FailoverWindow)
		}
		limit := c.opts.MaxBackoff
		// Only a GM that cannot be reached looks like a failover; a GM that answered (401, 403,
		// 503) or a token that cannot be read gets the normal backoff even within the window.
		if c.now().Before(failoverUntil) && (lived > 0 || isTransportError(err)) {
			limit = c.opts.FailoverBackoff
		}
		delay := c.backoff(failures, limit)
		failures++
		switch {
		case errors.Is(err, errToken):
			// A missing token is a deployment problem (projection not mounted), not a network one.
			logger.Error(err, "Cannot read the service-account token; retrying", "retryIn", delay)
		case lived > 0:
			logger.Info("Connection to GM ended; reconnecting", "err", err, "lived", lived.Round(time.Millisecond), "retryIn", delay)
		default:
			logger.Info("Cannot connect to GM; retrying", "err", err, "retryIn", delay)
		}
		if err := c.sleep(ctx, delay); err != nil {
			return
		}
	}
}

// backoff returns the delay before the next dial after failures consecutive failed or
// short-lived connections: a uniformly random duration up to InitialBackoff·2^failures, capped
// at maxDelay (MaxBackoff, or FailoverBackoff during a failover window). Full jitter spreads the
// redials of many LCs after GM restarts.
func (c *Client) backoff(failures int, maxDelay time.Duration) time.Duration {
	limit := c.opts.InitialBackoff
	for range failures {
		if limit >= maxDelay/2 {
			limit = maxDelay
			break
		}
		limit *= 2
	}
	limit = min(limit, maxDelay)
	return c.jitter(limit)
}

func fullJitter(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(limit) + 1))
}

func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// connectAndServe makes one connection and serves it until it breaks. lived is zero when no
// connection was established.
func (c *Client) connectAndServe(ctx context.Context) (lived time.Duration, err error) {
	ws, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	start := c.now()
	c.connected.Store(true)
	c.metrics.connected.Set(1)
	klog.FromContext(ctx).Info("Connected to GM")
	err = c.serve(ctx, ws)
	c.connected.Store(false)
	c.metrics.connected.Set(0)
	// A connection never counts as zero-lived: zero means "not connected" to Run.
	return max(c.now().Sub(start), time.Nanosecond), err
}

var errToken = errors.New("no usable service-account token")

// dial opens the websocket with the token and the CA bundle as they are now: both rotate, and a
// new file is read at the next dial.
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	token, err := c.token.get()
	if err != nil {
		c.metrics.dials.WithLabelValues(dialTokenError).Inc()
		return nil, err
	}
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		c.metrics.dials.WithLabelValues(dialConfigError).Inc()
		return nil, err
	}
	dialer := websocket.Dialer{
		TLSClientConfig:  tlsConfig,
		HandshakeTimeout: c.opts.HandshakeTimeout,
		// Edge sites often reach the cloud through a proxy; loopback is never proxied.
		Proxy:           http.ProxyFromEnvironment,
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		// Under TLS, so the writer can send several TLS records (acks, reports) in one write.
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return channel.NewBatchConn(conn), nil
		},
	}
	header := http.Header{}
	header.Set("Authorization", "Bearer "+token)
	header.Set(channel.StoreIDHeader, c.storeID)
	if c.opts.NodeName != "" {
		header.Set(nodeNameHeader, c.opts.NodeName)
	}
	ws, resp, err := dialer.DialContext(ctx, c.url, header)
	if err != nil {
		result := dialNetworkError
		var verifyErr *tls.CertificateVerificationError
		switch {
		case errors.As(err, &verifyErr):
			result = dialTLSError
			err = fmt.Errorf("verifying GM's certificate: %w", err)
		case resp != nil:
			result = dialRefused
			err = fmt.Errorf("GM refused the connection with %s%s: %w", resp.Status, responseReason(resp), err)
		default:
			err = transportError{fmt.Errorf("dialing GM: %w", err)}
		}
		c.metrics.dials.WithLabelValues(result).Inc()
		return nil, err
	}
	c.metrics.dials.WithLabelValues(dialOK).Inc()
	return ws, nil
}

// transportError is a dial that got no HTTP answer from GM: refused, unreachable, timed out,
// or a TLS handshake cut short — what a GM failing over looks like.
type transportError struct{ err error }

func (e transportError) Error() string { return e.err.Error() }
func (e transportError) Unwrap() error { return e.err }

func isTransportError(err error) bool {
	var te transportError
	return errors.As(err, &te)
}

// responseReason returns the start of GM's error body, which says why it refused.
func responseReason(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256)) // best effort: the status says enough
	reason := strings.TrimSpace(string(body))
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errToken, err)
	}
	defer func() { _ = f.Close() }() // read-only: closing cannot lose data
	data, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w: reading %s: %w", errToken, path, err)
	}
	if len(data) > maxTokenBytes {
		return "", fmt.Errorf("%w: %s is larger than %d bytes", errToken, path, maxTokenBytes)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("%w: %s is empty", errToken, path)
	}
	return token, nil
}

func (c *Client) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: c.opts.ServerName,
	}
	if c.rootCAs == nil {
		return cfg, nil // nil RootCAs: the system roots
	}
	pool, err := c.rootCAs.get()
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	return cfg, nil
}

func readCABundle(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading GM's CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("reading GM's CA bundle %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// storeIdentity returns the store's random identity, creating it with the store.
func storeIdentity(st *store.Store) (string, error) {
	const namespace, key = "gmclient", "store-id"
	id, ok, err := st.GetState(namespace, key)
	if err != nil {
		return "", fmt.Errorf("reading the store identity: %w", err)
	}
	if ok {
		return string(id), nil
	}
	raw := make([]byte, 16)
	if _, err := cryptorand.Read(raw); err != nil {
		return "", fmt.Errorf("generating the store identity: %w", err)
	}
	fresh := hex.EncodeToString(raw)
	if err := st.PutState(namespace, key, []byte(fresh)); err != nil {
		return "", fmt.Errorf("recording the store identity: %w", err)
	}
	return fresh, nil
}
