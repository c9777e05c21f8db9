package gmclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedna-go/sedna/pkg/channel"
)

// Defaults of Options.
const (
	DefaultInitialBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff       = 30 * time.Second
	DefaultFailoverBackoff  = 2 * time.Second
	DefaultFailoverWindow   = time.Minute
	DefaultPingInterval     = 20 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultMaxInflight      = 64
)

// stableConnection is how long a connection must have lived for the backoff to start again from
// InitialBackoff. A GM that accepts and drops connections at once keeps the backoff growing.
const stableConnection = 30 * time.Second

// outboxPollInterval bounds how long a report enqueued without a Notify waits to be sent.
const outboxPollInterval = 5 * time.Second

// Options configure a Client. Zero durations and sizes select the defaults.
type Options struct {
	// URL is GM's channel endpoint, wss://host:port/. A bare host:port (upstream's GM_ADDRESS)
	// is accepted and becomes wss://host:port/. Plain ws:// is refused: the token would travel in
	// clear.
	URL string
	// NodeName is sent as the Node-Name header; GM refuses the connection when it differs from
	// the node the token is bound to. Empty sends no header.
	NodeName string
	// TokenFile is the projected service-account token. It is read again on every dial, so a
	// rotated token is picked up at the next reconnect; a missing or empty file is logged and
	// retried with backoff.
	TokenFile string
	// CAFile is a PEM bundle to verify GM's certificate; empty uses the system roots. It is read
	// again on every dial so a rotated CA is picked up too.
	CAFile string
	// ServerName overrides the name GM's certificate is verified against (default: URL's host).
	ServerName string

	// InitialBackoff and MaxBackoff bound the exponential backoff (with full jitter) between
	// dials. The backoff starts again from InitialBackoff after a connection that lived longer
	// than 30s.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// FailoverBackoff caps the backoff instead of MaxBackoff for FailoverWindow after a stable
	// connection (one that lived longer than 30s) ended. Such an end is most often GM failing
	// over or restarting: GM is back within its lease duration and start-up, and an LC that
	// had grown its backoff to MaxBackoff while GM was away would wait up to MaxBackoff more
	// after GM serves again. While GM is away its Service refuses the dials, which costs GM
	// nothing; full jitter still spreads the LCs' arrival over FailoverBackoff once it serves.
	// Defaults 2s and 1m; past the window the backoff grows to MaxBackoff as before. The cap
	// applies only to dials that got no answer (refused, unreachable, timed out, handshake cut
	// short): a GM that answers 401, 403 or 503 is not failing over and gets the normal backoff.
	FailoverBackoff time.Duration
	FailoverWindow  time.Duration

	// MaxFrameBytes bounds frames in both directions; keep it equal to GM's limit. Default
	// channel.DefaultMaxFrameBytes.
	MaxFrameBytes int
	// PingInterval is how often the client pings GM; a connection on which nothing arrives for
	// three intervals is considered dead. Default 20s.
	PingInterval time.Duration
	// WriteTimeout bounds one write. Default 10s.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds TCP connect, TLS handshake and websocket upgrade. Default 30s.
	HandshakeTimeout time.Duration
	// MaxInflight is how many reports may be sent and not yet acknowledged at once. Default 64.
	MaxInflight int

	// Registerer receives the client's metrics; nil registers none (they are still counted).
	Registerer prometheus.Registerer
}

func (o *Options) setDefaults() {
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.FailoverBackoff <= 0 {
		o.FailoverBackoff = min(DefaultFailoverBackoff, o.MaxBackoff)
	}
	if o.FailoverWindow <= 0 {
		o.FailoverWindow = DefaultFailoverWindow
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = channel.DefaultMaxFrameBytes
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = DefaultMaxInflight
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.TokenFile == "" {
		errs = append(errs, errors.New("TokenFile is empty: GM accepts no connection without a token"))
	}
	if o.MaxBackoff < o.InitialBackoff {
		errs = append(errs, fmt.Errorf("MaxBackoff %s is shorter than InitialBackoff %s", o.MaxBackoff, o.InitialBackoff))
	}
	if o.FailoverBackoff > o.MaxBackoff {
		errs = append(errs, fmt.Errorf("FailoverBackoff %s is longer than MaxBackoff %s", o.FailoverBackoff, o.MaxBackoff))
	}
	return errors.Join(errs...)
}

// ParseGMAddress turns upstream's GM_ADDRESS (host:port) or a wss:// URL into the URL the client
// dials. The path defaults to "/".
func ParseGMAddress(address string) (string, error) {
	address = strings.TrimSpace(address)
	if address == "" {
		return "", errors.New("GM address is empty")
	}
	if !strings.Contains(address, "://") {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return "", fmt.Errorf("GM address %q is neither host:port nor a wss:// URL: %w", address, err)
		}
		if host == "" || port == "" {
			return "", fmt.Errorf("GM address %q lacks a host or a port", address)
		}
		return "wss://" + net.JoinHostPort(host, port) + "/", nil
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", fmt.Errorf("parsing GM URL %q: %w", address, err)
	}
	switch u.Scheme {
	case "wss":
	case "ws":
		return "", fmt.Errorf("GM URL %q uses plain ws://: the channel carries the node's token and must use wss://", address)
	default:
		return "", fmt.Errorf("GM URL %q has scheme %q, want wss", address, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("GM URL %q has no host", address)
	}
	if u.User != nil {
		return "", fmt.Errorf("GM URL %q carries user information; the client authenticates with its token only", address)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String(), nil
}
