package federated

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// Environment of federated learning workers (contract §5.1) that package env
// does not name, and ours.
const (
	EnvAggIP             = "AGG_IP"
	EnvAggPort           = "AGG_PORT"
	EnvAggProtocol       = "AGG_PROTOCOL"
	EnvAggBindPort       = "AGG_BIND_PORT"
	EnvParticipantsCount = "PARTICIPANTS_COUNT"
	EnvTrainDatasetURL   = "TRAIN_DATASET_URL"
	EnvModelURL          = "MODEL_URL"
	// EnvToken is the job's admission token (ours): the aggregator requires
	// it, the Go client presents it.
	EnvToken = "SEDNA_AGG_TOKEN"

	DefaultAggIP   = "127.0.0.1"
	DefaultAggPort = 7363
)

// Report vocabulary of federated learning trainers.
const (
	OwnerKind       = "federatedlearningjob"
	KindTrain       = "train"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	// reportTimeLayout is how the Python library writes ownerInfo times.
	reportTimeLayout = "2006-01-02 15:04:05"
)

// Reporter sends one message to the LC; *lc.Client implements it.
type Reporter interface {
	Report(ctx context.Context, msg lc.Message) error
}

var _ Reporter = (*lc.Client)(nil)

// TrainRequest is one round of local training.
type TrainRequest struct {
	// Round is the round of the global model to start from (0: the
	// initial model); the update is for round Round+1.
	Round int
	// Global is the model to start from (nil if the caller gave no initial
	// model and no round has closed yet). The trainer owns it.
	Global Weights
	// Mu is the FedProx proximal coefficient (0: plain FedAvg training).
	// Trainers apply it with AddProximalGradient.
	Mu float64
}

// TrainResult is a local training's outcome.
type TrainResult struct {
	Weights    Weights
	NumSamples int
	// Metrics, measured on the trainer's held-out data for Weights, feed
	// the aggregator's target-metric stop condition.
	Metrics map[string]float64
}

// Trainer trains locally.
type Trainer interface {
	Train(ctx context.Context, req TrainRequest) (TrainResult, error)
}

// TrainerFunc adapts a function to Trainer.
type TrainerFunc func(ctx context.Context, req TrainRequest) (TrainResult, error)

// Train implements Trainer.
func (f TrainerFunc) Train(ctx context.Context, req TrainRequest) (TrainResult, error) {
	return f(ctx, req)
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// URL is the aggregator's WebSocket URL, ws://AGG_IP:AGG_PORT/<algorithm>.
	URL string
	// ClientID is WORKER_NAME; JobName and Namespace are the report's owner.
	ClientID, JobName, Namespace string
	// Token is presented as a bearer token when set.
	Token string
	// Binary negotiates binary weight frames in DType (default Float32);
	// without it the client speaks upstream's JSON, capped at 16 MiB.
	Binary bool
	DType  DType
	// Mu is handed to the trainer (FedProx).
	Mu float64
	// Reporter receives round progress; nil reports nothing.
	Reporter Reporter
	// Evaluate, when set, measures every aggregate the client receives (e.g.
	// accuracy on a test set); the metrics go into the report's results as
	// the model's metrics. An error is logged and the report goes without.
	Evaluate func(ctx context.Context, agg *Aggregate) (map[string]float64, error)
	// ModelURL and ModelFormat name the aggregated model in the report's
	// results (MODEL_URL; the format defaults to the URL's extension).
	ModelURL, ModelFormat string
	// FinalReportTimeout bounds how long the trainer keeps sending its last
	// report (status completed) while the LC cannot take it (e.g. 503 with
	// a full store), 2 minutes by default: that report is the job's result
	// and no later one repairs it. Each attempt is the Reporter's own.
	FinalReportTimeout time.Duration
	// InitialBackoff and MaxBackoff pace connection attempts (1 s, 30 s);
	// ConnectTimeout bounds the time spent without a connection (0: until
	// the context ends), so a trainer that starts before the aggregator
	// waits for it instead of crashing.
	InitialBackoff, MaxBackoff, ConnectTimeout time.Duration
	// MaxMessageBytes bounds a received frame (default: 1 GiB binary,
	// 16 MiB JSON).
	MaxMessageBytes int64
	// Dialer defaults to a dialer with a 30 s handshake timeout.
	Dialer *websocket.Dialer
}

// ClientOptionsFromEnv reads the trainer environment GM injects: AGG_IP,
// AGG_PORT, AGG_PROTOCOL, WORKER_NAME, JOB_NAME, NAMESPACE and
// SEDNA_AGG_TOKEN; the reporter is an LC client for LC_SERVER. algorithm is
// the URL path (AlgorithmFedAvg).
func ClientOptionsFromEnv(environment *env.Context, algorithm string) (ClientOptions, error) {
	port, err := environment.Port(EnvAggPort, DefaultAggPort)
	if err != nil {
		return ClientOptions{}, err
	}
	scheme := environment.Get(EnvAggProtocol, "ws")
	if scheme != "ws" && scheme != "wss" {
		return ClientOptions{}, fmt.Errorf("environment variable %s=%q is neither ws nor wss", EnvAggProtocol, scheme)
	}
	u := url.URL{Scheme: scheme, Host: netJoin(environment.Get(EnvAggIP, DefaultAggIP), port), Path: "/" + algorithm}
	opts := ClientOptions{
		URL: u.String(), ClientID: environment.WorkerName(), JobName: environment.JobName(),
		Namespace: environment.Namespace(), Token: environment.Get(EnvToken, ""),
		ModelURL: environment.Get(EnvModelURL, ""),
	}
	if opts.ClientID == "" {
		return opts, errors.New("environment variable WORKER_NAME is not set: the aggregator needs a client id")
	}
	if opts.Namespace == "" {
		opts.Namespace = opts.JobName
	}
	reporter, err := lc.New(lc.Options{Server: environment.LCServerURL(), Worker: opts.ClientID})
	if err != nil {
		return opts, err
	}
	opts.Reporter = reporter
	return opts, nil
}

func netJoin(host string, port int) string {
	u := url.URL{Host: host}
	if u.Hostname() != host { // an IPv6 literal without brackets
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// Client is a federated learning trainer's connection to the aggregator.
type Client struct {
	opts ClientOptions
}

// NewClient validates opts.
func NewClient(opts ClientOptions) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("creating federated client: aggregator URL %q is not ws(s)://host:port/<algorithm>", opts.URL)
	}
	if err := validClientID(opts.ClientID); err != nil {
		return nil, fmt.Errorf("creating federated client: %w", err)
	}
	if opts.Mu < 0 {
		return nil, fmt.Errorf("creating federated client: mu %v must not be negative", opts.Mu)
	}
	if opts.DType == 0 {
		opts.DType = Float32
	}
	if !opts.DType.valid() {
		return nil, fmt.Errorf("creating federated client: dtype %d is neither Float32 nor Float64", opts.DType)
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxJSONMessageBytes
		if opts.Binary {
			opts.MaxMessageBytes = DefaultMaxBinaryMessageBytes
		}
	}
	if opts.Dialer == nil {
		opts.Dialer = &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	}
	return &Client{opts: opts}, nil
}

// ErrRefused is returned when the aggregator refuses the client's token
// (HTTP 401 or 403): retrying cannot help.
var ErrRefused = errors.New("the aggregator refused this client")

// session is one connection.
type session struct {
	ws     *websocket.Conn
	binary bool
}

// Run trains until the aggregator says training is over and returns the
// final global model. It survives aggregator restarts and network cuts: it
// reconnects, asks for the current global model, and either resends the
// update it trained (if the aggregator is still at the same round) or trains
// again from the newer model.
func (c *Client) Run(ctx context.Context, initial Weights, trainer Trainer) (*Aggregate, error) {
	logger := klog.FromContext(ctx).WithValues("client", c.opts.ClientID, "aggregator", c.opts.URL)
	ctx = klog.NewContext(ctx, logger)
	start := time.Now()
	global, base := initial, 0
	var pending *TrainResult
	adopt := func(agg *Aggregate) {
		switch {
		case agg.Round > base, agg.Round < base:
			// Newer: train from it. Older: the aggregator lost rounds
			// (restarted without a checkpoint); follow it.
			base, pending = agg.Round, nil
			if agg.Weights != nil {
				global = agg.Weights
			}
		case agg.Weights != nil && global == nil:
			global = agg.Weights
		}
	}
	for {
		sess, agg, err := c.connect(ctx)
		if err != nil {
			return nil, err
		}
		adopt(agg)
		if agg.Exit == ExitOK {
			c.closeSession(sess)
			c.report(ctx, agg, start)
			return agg, nil
		}
		final, err := c.rounds(ctx, sess, &global, &base, &pending, trainer, adopt, start)
		c.closeSession(sess)
		switch {
		case err == nil:
			return final, nil
		case errors.Is(err, errFatal) || ctx.Err() != nil:
			return nil, err
		}
		logger.Info("Lost the aggregator; reconnecting", "round", base, "err", err)
	}
}

var errFatal = errors.New("fatal")

func (c *Client) rounds(ctx context.Context, sess *session, global *Weights, base *int, pending **TrainResult, trainer Trainer,
	adopt func(*Aggregate), start time.Time) (*Aggregate, error) {
	logger := klog.FromContext(ctx)
	for {
		if *pending == nil {
			result, err := trainer.Train(ctx, TrainRequest{Round: *base, Global: global.Clone(), Mu: c.opts.Mu})
			if err != nil {
				return nil, fmt.Errorf("%w: local training for round %d: %w", errFatal, *base+1, err)
			}
			if err := result.Weights.Validate(); err != nil {
				return nil, fmt.Errorf("%w: local training for round %d returned a bad model: %w", errFatal, *base+1, err)
			}
			*pending = &result
		}
		if err := c.sendUpdate(sess, *pending, *base); err != nil {
			return nil, err
		}
		agg, err := c.readAggregate(sess)
		if err != nil {
			return nil, err
		}
		if agg.Round <= *base && agg.Exit != ExitOK {
			logger.V(2).Info("Aggregator answered with an older round", "round", agg.Round, "base", *base)
		}
		adopt(agg)
		c.report(ctx, agg, start)
		logger.V(2).Info("Received the global model", "round", agg.Round, "totalSample", agg.TotalSample, "exit", agg.Exit)
		if agg.Exit == ExitOK {
			return agg, nil
		}
	}
}

func (c *Client) closeSession(sess *session) {
	deadline := time.Now().Add(time.Second)
	_ = sess.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline) // best effort
	_ = sess.ws.Close()                                                                                                        // the connection is done either way
}

// connect dials with backoff until the aggregator answers, subscribes with
// sync and returns the current global model.
func (c *Client) connect(ctx context.Context) (*session, *Aggregate, error) {
	logger := klog.FromContext(ctx)
	if c.opts.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.ConnectTimeout)
		defer cancel()
	}
	backoff := c.opts.InitialBackoff
	for attempt := 1; ; attempt++ {
		sess, agg, err := c.dialOnce(ctx)
		if err == nil {
			return sess, agg, nil
		}
		if errors.Is(err, ErrRefused) {
			return nil, nil, err
		}
		logger.V(2).Info("Aggregator not reachable yet", "attempt", attempt, "retryIn", backoff, "err", err)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, nil, fmt.Errorf("connecting to the aggregator %s: %w (last attempt: %w)", c.opts.URL, ctx.Err(), err)
		case <-timer.C:
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

func (c *Client) dialOnce(ctx context.Context) (*session, *Aggregate, error) {
	header := http.Header{}
	if c.opts.Token != "" {
		header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	dialer := *c.opts.Dialer
	if c.opts.Binary {
		dialer.Subprotocols = []string{BinarySubprotocol}
	}
	ws, resp, err := dialer.DialContext(ctx, c.opts.URL, header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close() // only the status matters
	}
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return nil, nil, fmt.Errorf("%w: HTTP %d (is %s the job's token?)", ErrRefused, resp.StatusCode, EnvToken)
		}
		return nil, nil, fmt.Errorf("dialing %s: %w", c.opts.URL, err)
	}
	ws.SetReadLimit(c.opts.MaxMessageBytes)
	sess := &session{ws: ws, binary: ws.Subprotocol() == BinarySubprotocol}
	subscribe, _ := json.Marshal(map[string]any{"type": TypeSubscribe, "client_id": c.opts.ClientID, "sync": true}) // a map of strings and a bool always marshals
	if err := ws.WriteMessage(websocket.TextMessage, subscribe); err != nil {
		c.closeSession(sess)
		return nil, nil, fmt.Errorf("subscribing: %w", err)
	}
	// The acknowledgement (the echo of our subscribe), then the current
	// model we asked for with sync.
	agg, err := c.readAggregate(sess)
	if err != nil {
		c.closeSession(sess)
		return nil, nil, fmt.Errorf("waiting for the current model after subscribing: %w", err)
	}
	return sess, agg, nil
}

func (c *Client) sendUpdate(sess *session, result *TrainResult, base int) error {
	baseRound := base
	if sess.binary {
		frame, err := encodeBinary(binaryHeader{
			Type: TypeUpdateWeight, Client: c.opts.ClientID, JobName: c.opts.JobName, NumSamples: result.NumSamples,
			BaseRound: &baseRound, Metrics: result.Metrics,
		}, result.Weights, c.opts.DType)
		if err != nil {
			return fmt.Errorf("%w: encoding the update: %w", errFatal, err)
		}
		if err := sess.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
			return fmt.Errorf("sending the update: %w", err)
		}
		return nil
	}
	b := []byte(`{"type":"update_weight","client":`)
	b = appendJSONString(b, c.opts.ClientID)
	b = append(b, `,"data":{"num_samples":`...)
	b = strconv.AppendInt(b, int64(result.NumSamples), 10)
	b = append(b, `,"weights":`...)
	b = appendJSONWeights(b, result.Weights)
	b = append(b, `,"base_round":`...)
	b = strconv.AppendInt(b, int64(base), 10)
	if len(result.Metrics) > 0 {
		metrics, err := json.Marshal(result.Metrics)
		if err != nil {
			return fmt.Errorf("%w: encoding metrics: %w", errFatal, err)
		}
		b = append(b, `,"metrics":`...)
		b = append(b, metrics...)
	}
	b = append(b, `},"job_name":`...)
	b = appendJSONString(b, c.opts.JobName)
	b = append(b, '}')
	if err := sess.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("sending the update: %w", err)
	}
	return nil
}

// readAggregate reads frames until a recv_weight, skipping upstream's
// informational frames; an error frame from the aggregator is fatal.
func (c *Client) readAggregate(sess *session) (*Aggregate, error) {
	for {
		kind, data, err := sess.ws.ReadMessage()
		if err != nil {
			var closeErr *websocket.CloseError
			if errors.As(err, &closeErr) && (closeErr.Code == closeBadClient || closeErr.Code == websocket.CloseMessageTooBig) {
				return nil, fmt.Errorf("%w: the aggregator closed the connection: %w", errFatal, err)
			}
			return nil, fmt.Errorf("reading from the aggregator: %w", err)
		}
		if kind == websocket.BinaryMessage {
			agg, err := parseRecvWeight(true, data)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errFatal, err)
			}
			return agg, nil
		}
		var env envelope
		if err := json.Unmarshal(data, &env); err != nil {
			return nil, fmt.Errorf("%w: the aggregator sent something that is not JSON: %w", errFatal, err)
		}
		switch env.Type {
		case TypeRecvWeight:
			agg, err := parseRecvWeight(false, data)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errFatal, err)
			}
			return agg, nil
		case TypeError:
			var reason string
			_ = json.Unmarshal(env.Data, &reason) // the raw data is shown if it is not a string
			if reason == "" {
				reason = string(env.Data)
			}
			return nil, fmt.Errorf("%w: the aggregator refused our message: %s", errFatal, reason)
		}
	}
}

// report sends upstream's trainer progress: kind train, status running (or
// completed with the last round), ownerInfo {currentRound, sampleCount,
// startTime, updateTime} plus the round's Progress (roundClients,
// participants, lateClients when any, lateUpdates), and, when Evaluate is
// set, results [{format, url, metrics}] with the aggregate's metrics. A
// failed report is logged: the LC being away must not stop training. The
// last report (the aggregator said training ended) is sent again, with a
// growing pause, until the LC takes it, refuses it for good (400, 403) or
// FinalReportTimeout passes.
func (c *Client) report(ctx context.Context, agg *Aggregate, start time.Time) {
	if c.opts.Reporter == nil {
		return
	}
	logger := klog.FromContext(ctx)
	msg := c.reportMessage(ctx, agg, start, time.Now())
	err := c.opts.Reporter.Report(ctx, msg)
	if err == nil {
		return
	}
	if agg.Exit != ExitOK || !lc.Retryable(err) || ctx.Err() != nil {
		logger.Error(err, "Reporting round progress to the LC failed", "round", agg.Round)
		return
	}
	timeout := c.opts.FinalReportTimeout
	if timeout <= 0 {
		timeout = DefaultFinalReportTimeout
	}
	deadline := time.Now().Add(timeout)
	pause := c.opts.InitialBackoff
	if pause <= 0 {
		pause = time.Second
	}
	for attempt := 2; ; attempt++ {
		if !time.Now().Add(pause).Before(deadline) {
			logger.Error(err, "Gave up sending the last round's report to the LC", "round", agg.Round, "attempts", attempt-1, "timeout", timeout)
			return
		}
		logger.Info("The LC did not take the last round's report; sending it again", "round", agg.Round, "attempt", attempt, "pause", pause, "err", err)
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			logger.Error(err, "Stopped sending the last round's report to the LC", "round", agg.Round)
			return
		case <-timer.C:
		}
		if err = c.opts.Reporter.Report(ctx, msg); err == nil {
			logger.Info("The LC took the last round's report", "round", agg.Round, "attempt", attempt)
			return
		}
		if ctx.Err() != nil {
			logger.Error(err, "Stopped sending the last round's report to the LC", "round", agg.Round)
			return
		}
		if !lc.Retryable(err) {
			logger.Error(err, "The LC refused the last round's report", "round", agg.Round)
			return
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// DefaultFinalReportTimeout is ClientOptions.FinalReportTimeout's default.
const DefaultFinalReportTimeout = 2 * time.Minute

func (c *Client) reportMessage(ctx context.Context, agg *Aggregate, start, now time.Time) lc.Message {
	status := StatusRunning
	if agg.Exit == ExitOK {
		status = StatusCompleted
	}
	info := map[string]any{
		"currentRound": agg.Round,
		"sampleCount":  agg.TotalSample,
		"startTime":    start.Format(reportTimeLayout),
		"updateTime":   now.Format(reportTimeLayout),
	}
	if agg.Participants > 0 {
		info["roundClients"] = agg.RoundClients
		info["participants"] = agg.Participants
		info["lateUpdates"] = agg.LateUpdates
		if len(agg.LateClients) > 0 {
			info["lateClients"] = agg.LateClients
		}
	}
	msg := lc.Message{
		Name: c.opts.ClientID, Namespace: c.opts.Namespace, OwnerName: c.opts.JobName, OwnerKind: OwnerKind,
		Kind: KindTrain, Status: status, OwnerInfo: info,
	}
	if c.opts.Evaluate != nil && agg.Weights != nil {
		metrics, err := c.opts.Evaluate(ctx, agg)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Evaluating the aggregate failed; reporting without metrics", "round", agg.Round)
		} else if len(metrics) > 0 {
			format := c.opts.ModelFormat
			if format == "" {
				format = strings.TrimPrefix(path.Ext(c.opts.ModelURL), ".")
			}
			msg.Results = []map[string]any{{"format": format, "url": c.opts.ModelURL, "metrics": metrics}}
		}
	}
	return msg
}
