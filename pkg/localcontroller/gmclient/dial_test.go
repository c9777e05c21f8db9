package gmclient

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/globalmanager/messagelayer"
)

func TestRotatedTokenIsReadOnReconnect(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.auth.static.Tokens = map[string]string{"token-old": testNode, "token-new": testNode}
	gm.start("")
	lc := newLC(t, gm)
	writeFileAtomically(t, lc.tokenFile, []byte("token-old"))
	c := lc.newClient(t, lc.options(gm.url()))
	run(t, ctx, c)
	require.Eventually(t, c.Connected, eventually, tick)
	require.Equal(t, []authAttempt{{token: "token-old", accepted: true}}, gm.auth.seen())

	// The kubelet rotates the projected token; the old one stops being valid.
	writeFileAtomically(t, lc.tokenFile, []byte("token-new\n"))
	gm.auth.revoke("token-old")
	gm.kick()

	require.Eventually(t, func() bool { return gm.upgrades() == 2 && c.Connected() }, eventually, tick)
	require.Equal(t, []authAttempt{{token: "token-old", accepted: true}, {token: "token-new", accepted: true}}, gm.auth.seen())
	require.Equal(t, 2, c.token.loadCount(), "the token file is read once per version, not once per dial")
}

func TestMissingOrEmptyTokenFileIsRetried(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.start("")
	lc := newLC(t, gm)
	require.NoError(t, os.Remove(lc.tokenFile))
	c := lc.newClient(t, lc.options(gm.url()))
	run(t, ctx, c)

	tokenErrors := func() float64 { return testutil.ToFloat64(c.metrics.dials.WithLabelValues(dialTokenError)) }
	require.Eventually(t, func() bool { return tokenErrors() >= 2 }, eventually, tick, "a missing file is retried")
	writeFileAtomically(t, lc.tokenFile, []byte(" \n"))
	seen := tokenErrors()
	require.Eventually(t, func() bool { return tokenErrors() >= seen+2 }, eventually, tick, "an empty file is retried")
	require.False(t, c.Connected())
	require.Empty(t, gm.auth.seen(), "no dial without a token")

	writeFileAtomically(t, lc.tokenFile, []byte(testToken))
	require.Eventually(t, c.Connected, eventually, tick)
	require.Equal(t, []authAttempt{{token: testToken, accepted: true}}, gm.auth.seen())
}

func TestWrongCAFailsTLSAndIsRetried(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.start("")
	lc := newLC(t, gm)
	newTestPKI(t).writeCA(t, lc.caFile) // a CA that did not sign GM's certificate
	c := lc.newClient(t, lc.options(gm.url()))
	run(t, ctx, c)

	require.Eventually(t, func() bool {
		return testutil.ToFloat64(c.metrics.dials.WithLabelValues(dialTLSError)) >= 2
	}, eventually, tick)
	require.False(t, c.Connected())
	require.Empty(t, gm.auth.seen(), "the token is never sent to an unverified server")

	// A new CA bundle is read at the next dial, so fixing it is enough.
	gm.pki.writeCA(t, lc.caFile)
	require.Eventually(t, c.Connected, eventually, tick)
}

func TestServerNameOverride(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.start("")
	lc := newLC(t, gm)
	opts := lc.options(gm.url())
	opts.ServerName = "not-gm.example"
	c := lc.newClient(t, opts)
	run(t, ctx, c)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(c.metrics.dials.WithLabelValues(dialTLSError)) >= 1
	}, eventually, tick, "the certificate is checked against the override, which it does not name")

	opts.ServerName = "sedna-gm.sedna.svc"
	c2 := lc.newClient(t, opts)
	run(t, ctx, c2)
	require.Eventually(t, c2.Connected, eventually, tick)
}

func TestRefusedConnectionSaysWhy(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.start("")
	lc := newLC(t, gm)
	opts := lc.options(gm.url())
	opts.NodeName = "node-b" // the token belongs to node-a
	c := lc.newClient(t, opts)

	_, err := c.dial(ctx)
	require.ErrorContains(t, err, "GM refused the connection with 403 Forbidden (the token is bound to another node)")
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.dials.WithLabelValues(dialRefused)))
}

// recordSleeps replaces the client's sleep with one that records each delay and returns at once.
func recordSleeps(c *Client) <-chan time.Duration {
	delays := make(chan time.Duration, 100)
	c.sleep = func(ctx context.Context, d time.Duration) error {
		select {
		case delays <- d:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return delays
}

func nextDelay(t *testing.T, delays <-chan time.Duration) time.Duration {
	t.Helper()
	select {
	case d := <-delays:
		return d
	case <-time.After(eventually):
		t.Fatal("the client did not back off")
		return 0
	}
}

// backoffClient is a client of gm at url whose delays are the upper bound of full jitter
// (deterministic), whose clock the test moves on with elapsed, and whose sleeps are recorded
// (delays). opts adjusts the options (InitialBackoff 100ms, MaxBackoff 10s unless changed).
type backoffClient struct {
	*Client
	lc      *lcFixture
	elapsed *atomic.Int64
	delays  <-chan time.Duration
}

func newBackoffClient(t *testing.T, gm *testGM, url string, opts func(*Options)) backoffClient {
	lc := newLC(t, gm)
	o := lc.options(url)
	o.InitialBackoff, o.MaxBackoff = 100*time.Millisecond, 10*time.Second
	if opts != nil {
		opts(&o)
	}
	c := lc.newClient(t, o)
	c.jitter = func(limit time.Duration) time.Duration { return limit }
	elapsed := &atomic.Int64{}
	start := time.Now()
	c.now = func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	return backoffClient{Client: c, lc: lc, elapsed: elapsed, delays: recordSleeps(c)}
}

// next returns the client's next n delays.
func (b backoffClient) next(t *testing.T, n int) []time.Duration {
	got := make([]time.Duration, 0, n)
	for range n {
		got = append(got, nextDelay(t, b.delays))
	}
	return got
}

// connected reports whether gm upgraded n connections and the client holds one.
func (b backoffClient) connected(gm *testGM, n int) func() bool {
	return func() bool { return gm.upgrades() == n && b.Connected() }
}

const ms = time.Millisecond

func TestBackoffGrowsToItsCap(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	c := newBackoffClient(t, gm, "wss://"+reserveAddr(t)+"/", // nothing listens there
		func(o *Options) { o.MaxBackoff = time.Second })
	run(t, ctx, c.Client)

	require.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, time.Second}, c.next(t, 7))
}

func TestBackoffStartsAgainAfterAStableConnection(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.start("")
	c := newBackoffClient(t, gm, gm.url(), nil)
	run(t, ctx, c.Client)

	require.Eventually(t, c.connected(gm, 1), eventually, tick)
	gm.kick()
	require.Equal(t, 100*ms, nextDelay(t, c.delays))
	require.Eventually(t, c.connected(gm, 2), eventually, tick)
	gm.kick()
	require.Equal(t, 200*ms, nextDelay(t, c.delays), "a short-lived connection does not reset the backoff")
	require.Eventually(t, c.connected(gm, 3), eventually, tick)
	c.elapsed.Add(int64(stableConnection + time.Second))
	gm.kick()
	require.Equal(t, 100*ms, nextDelay(t, c.delays), "a connection that lived past 30s resets it")
}

// After a stable connection ends (GM failing over), the backoff is capped at FailoverBackoff
// for FailoverWindow, however many dials fail; past the window it grows to MaxBackoff again.
func TestBackoffStaysShortDuringAFailoverWindow(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.start("")
	c := newBackoffClient(t, gm, gm.url(), func(o *Options) {
		o.FailoverBackoff, o.FailoverWindow = 400*time.Millisecond, time.Minute
	})
	// The window ends right after the sixth delay: advanced inside the sleep, before the client
	// computes the next delay (advancing it from the test raced with the client's loop).
	record := c.sleep
	var sleeps atomic.Int32
	c.sleep = func(ctx context.Context, d time.Duration) error {
		err := record(ctx, d)
		if sleeps.Add(1) == 6 {
			c.elapsed.Add(int64(time.Minute))
		}
		return err
	}
	run(t, ctx, c.Client)

	require.Eventually(t, c.connected(gm, 1), eventually, tick)
	c.elapsed.Add(int64(stableConnection + time.Second))
	// GM goes away: every dial from now on fails.
	gm.srv.Close()
	gm.kick()
	require.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 400 * ms, 400 * ms, 400 * ms}, c.next(t, 6),
		"within the window the backoff stops at FailoverBackoff")
	require.Equal(t, []time.Duration{6400 * ms, 10 * time.Second, 10 * time.Second}, c.next(t, 3),
		"past the window it grows to MaxBackoff again")
}

// Within a failover window, a GM that answers (here 401: the token is no longer accepted) is
// not failing over: the backoff grows past FailoverBackoff as it would outside the window.
func TestFailoverWindowIgnoresRefusals(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.start("")
	c := newBackoffClient(t, gm, gm.url(), func(o *Options) {
		o.FailoverBackoff, o.FailoverWindow = 400*time.Millisecond, time.Minute
	})
	run(t, ctx, c.Client)

	require.Eventually(t, c.connected(gm, 1), eventually, tick)
	c.elapsed.Add(int64(stableConnection + time.Second))
	writeFileAtomically(t, c.lc.tokenFile, []byte("not-a-token\n"))
	gm.kick()
	require.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms}, c.next(t, 6),
		"GM answering 401 is not a failover: no FailoverBackoff cap")
}

// A connection that never became stable opens no failover window: an LC refused again and
// again backs off to MaxBackoff.
func TestNoFailoverWindowWithoutAStableConnection(t *testing.T) {
	ctx := testContext(t)
	gm := newTestGM(t, ctx, messagelayer.Options{})
	gm.start("")
	c := newBackoffClient(t, gm, gm.url(), func(o *Options) {
		o.MaxBackoff, o.FailoverBackoff = time.Second, 200*time.Millisecond
	})
	run(t, ctx, c.Client)

	require.Eventually(t, c.connected(gm, 1), eventually, tick)
	gm.srv.Close()
	gm.kick()
	require.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}, c.next(t, 6))
}

func TestFullJitterStaysWithinItsBound(t *testing.T) {
	limit := 50 * time.Millisecond
	distinct := map[time.Duration]bool{}
	for range 1000 {
		d := fullJitter(limit)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, limit)
		distinct[d] = true
	}
	require.Greater(t, len(distinct), 100, "the delays are spread, not fixed")
	require.Equal(t, time.Duration(0), fullJitter(0))
}

func TestHalfOpenConnectionIsDetected(t *testing.T) {
	ctx := testContext(t)
	pki := newTestPKI(t)
	var upgrades atomic.Int32
	release := make(chan struct{})
	// Accepts the websocket and then neither reads nor writes: pings go unanswered, as with a
	// peer that vanished without closing the TCP connection.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		upgrades.Add(1)
		<-release
		_ = ws.Close() // the test is over
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}
	srv.StartTLS()
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	dir := t.TempDir()
	lc := &lcFixture{dir: dir, tokenFile: filepath.Join(dir, "token"), caFile: filepath.Join(dir, "ca.crt"), store: openStore(t), handler: &recordingHandler{}}
	writeFileAtomically(t, lc.tokenFile, []byte(testToken))
	pki.writeCA(t, lc.caFile)
	opts := lc.options("wss://" + srv.Listener.Addr().String() + "/")
	opts.PingInterval = 50 * time.Millisecond
	c := lc.newClient(t, opts)
	run(t, ctx, c)

	require.Eventually(t, func() bool { return upgrades.Load() >= 3 }, eventually, tick, "the silent connection is abandoned and redialled")
}

func TestNewValidatesOptions(t *testing.T) {
	st := openStore(t)
	h := &recordingHandler{}
	cases := map[string]struct {
		opts Options
		want string
	}{
		"no token file":    {Options{URL: "gm:9000"}, "TokenFile is empty"},
		"plain ws":         {Options{URL: "ws://gm:9000/", TokenFile: "t"}, "must use wss://"},
		"no port":          {Options{URL: "gm", TokenFile: "t"}, "neither host:port nor a wss:// URL"},
		"backoff bounds":   {Options{URL: "gm:9000", TokenFile: "t", InitialBackoff: time.Minute, MaxBackoff: time.Second}, "MaxBackoff 1s is shorter than InitialBackoff 1m0s"},
		"failover backoff": {Options{URL: "gm:9000", TokenFile: "t", MaxBackoff: time.Second, FailoverBackoff: time.Minute}, "FailoverBackoff 1m0s is longer than MaxBackoff 1s"},
		"user info":        {Options{URL: "wss://u:p@gm:9000/", TokenFile: "t"}, "user information"},
		"other scheme":     {Options{URL: "https://gm:9000/", TokenFile: "t"}, `scheme "https"`},
		"empty address":    {Options{TokenFile: "t"}, "GM address is empty"},
		"missing host":     {Options{URL: ":9000", TokenFile: "t"}, "lacks a host or a port"},
		"wss without host": {Options{URL: "wss:///x", TokenFile: "t"}, "has no host"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.opts, st, h)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := New(Options{URL: "gm:9000", TokenFile: "t"}, nil, h)
	require.ErrorContains(t, err, "store is nil")
	_, err = New(Options{URL: "gm:9000", TokenFile: "t"}, st, nil)
	require.ErrorContains(t, err, "handler is nil")
}

func TestParseGMAddress(t *testing.T) {
	for in, want := range map[string]string{
		"sedna-gm.sedna:9000":          "wss://sedna-gm.sedna:9000/",
		"10.0.0.1:9000":                "wss://10.0.0.1:9000/",
		"[fd00::1]:9000":               "wss://[fd00::1]:9000/",
		"wss://gm.example:443":         "wss://gm.example:443/",
		"wss://gm.example:443/channel": "wss://gm.example:443/channel",
		" gm:9000 ":                    "wss://gm:9000/",
	} {
		got, err := ParseGMAddress(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
}

func TestNewAppliesDefaultsAndRegistersMetrics(t *testing.T) {
	st := openStore(t)
	reg := prometheus.NewRegistry()
	c, err := New(Options{URL: "gm:9000", TokenFile: "t", Registerer: reg}, st, &recordingHandler{})
	require.NoError(t, err)
	require.Equal(t, DefaultInitialBackoff, c.opts.InitialBackoff)
	require.Equal(t, DefaultMaxBackoff, c.opts.MaxBackoff)
	require.Equal(t, DefaultFailoverBackoff, c.opts.FailoverBackoff)
	require.Equal(t, DefaultFailoverWindow, c.opts.FailoverWindow)
	require.Equal(t, DefaultMaxInflight, c.opts.MaxInflight)
	require.Equal(t, DefaultPingInterval, c.opts.PingInterval)
	require.Equal(t, DefaultWriteTimeout, c.opts.WriteTimeout)
	c.metrics.reportsSent.Inc()
	count, err := testutil.GatherAndCount(reg, "sedna_lc_channel_reports_sent_total")
	require.NoError(t, err)
	require.Equal(t, 1, count)

	_, err = New(Options{URL: "gm:9000", TokenFile: "t", Registerer: reg}, st, &recordingHandler{})
	require.ErrorContains(t, err, "registering GM client metrics")
}

func TestNotifyNeverBlocks(t *testing.T) {
	c, err := New(Options{URL: "gm:9000", TokenFile: "t"}, openStore(t), &recordingHandler{})
	require.NoError(t, err)
	for range 10 {
		c.Notify() // nobody is sending: the wake-ups coalesce into one
	}
	require.Len(t, c.notify, 1)
}
