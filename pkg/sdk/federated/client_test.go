package federated

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// fakeLC is an LC worker endpoint recording the reports it gets.
type fakeLC struct {
	mu      sync.Mutex
	reports []lc.Message
	paths   []string
}

func startLC(t *testing.T) (*fakeLC, string) {
	f := &fakeLC{}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg lc.Message
		if err := json.Unmarshal(body, &msg); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.reports = append(f.reports, msg)
		f.paths = append(f.paths, r.URL.Path)
		f.mu.Unlock()
		_, _ = w.Write([]byte(`{"Status":200,"Message":"OK"}`))
	}))
	t.Cleanup(server.Close)
	return f, server.URL
}

// plusOne trains by adding 1 to every value of the global model (or starts
// from zeros of shape [4]).
type plusOne struct {
	mu     sync.Mutex
	rounds []int
	mus    []float64
	hook   func(round int)
	metric func(round int) float64
}

func (p *plusOne) Train(_ context.Context, req TrainRequest) (TrainResult, error) {
	p.mu.Lock()
	p.rounds = append(p.rounds, req.Round)
	p.mus = append(p.mus, req.Mu)
	p.mu.Unlock()
	if p.hook != nil {
		p.hook(req.Round)
	}
	w := req.Global
	if w == nil {
		w = Weights{NewLayer(4)}
	}
	for i := range w {
		for j := range w[i].Values {
			w[i].Values[j]++
		}
	}
	result := TrainResult{Weights: w, NumSamples: 10}
	if p.metric != nil {
		result.Metrics = map[string]float64{"accuracy": p.metric(req.Round)}
	}
	return result, nil
}

func TestGoClientTrainsAlongsidePythonClient(t *testing.T) {
	lcServer, lcURL := startLC(t)
	_, url := startServer(t, ServerOptions{Policy: Policy{Participants: 2, ExitRound: 3}})
	environment := env.New(env.MapLookup(map[string]string{
		"AGG_IP": "127.0.0.1", "AGG_PORT": "7363", "WORKER_NAME": "trainworker-go", "JOB_NAME": testJob,
		"NAMESPACE": "default", "LC_SERVER": lcURL,
	}))
	opts, err := ClientOptionsFromEnv(environment, AlgorithmFedAvg)
	require.NoError(t, err)
	require.Equal(t, "ws://127.0.0.1:7363/FedAvg", opts.URL)
	opts.URL, opts.Binary, opts.Mu = url, true, 0.01
	client, err := NewClient(opts)
	require.NoError(t, err)
	trainer := &plusOne{}
	type outcome struct {
		agg *Aggregate
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		agg, err := client.Run(testContext(t), Weights{NewLayer(4)}, trainer)
		done <- outcome{agg, err}
	}()

	// The Python peer always sends 3.0 with 30 samples.
	p, _ := dialPython(t, url, "trainworker-py")
	var last pythonRecv
	for range 3 {
		p.sendUpdate(30, `[[3.0, 3.0, 3.0, 3.0]]`)
		frame, _ := p.recvWeight()
		last = decodeRecv(t, frame)
	}
	require.Equal(t, "ok", last.Data.ExitFlag)
	result := <-done
	require.NoError(t, result.err)
	require.Equal(t, 3, result.agg.Round)
	require.Equal(t, ExitOK, result.agg.Exit)
	require.Equal(t, []int{0, 1, 2}, trainer.rounds)
	require.Equal(t, []float64{0.01, 0.01, 0.01}, trainer.mus)
	// Round 1: (10·1 + 30·3)/40 = 2.5; round 2: (10·3.5 + 90)/40 = 3.125;
	// round 3: (10·4.125 + 90)/40 = 3.28125. Both kinds of clients agree.
	require.InDelta(t, 3.28125, result.agg.Weights[0].Values[0], 1e-6)
	require.InDelta(t, 3.28125, last.Data.Weights[0][0], 1e-6)

	lcServer.mu.Lock()
	defer lcServer.mu.Unlock()
	require.Len(t, lcServer.reports, 3)
	for i, report := range lcServer.reports {
		require.Equal(t, "/sedna/workers/trainworker-go/info", lcServer.paths[i])
		require.Equal(t, "trainworker-go", report.Name)
		require.Equal(t, "default", report.Namespace)
		require.Equal(t, testJob, report.OwnerName)
		require.Equal(t, "federatedlearningjob", report.OwnerKind)
		require.Equal(t, "train", report.Kind)
		info := report.OwnerInfo.(map[string]any)
		require.Equal(t, float64(i+1), info["currentRound"])
		require.Equal(t, float64(40), info["sampleCount"])
		require.Contains(t, info, "startTime")
		require.Contains(t, info, "updateTime")
		want := "running"
		if i == 2 {
			want = "completed"
		}
		require.Equal(t, want, report.Status)
	}
}

// serveOn serves s on addr until stop is called.
func serveOn(t *testing.T, addr string, s *Server) (stop func()) {
	t.Helper()
	var listener net.Listener
	var err error
	for range 100 { // the previous server's port may take a moment to free
		if listener, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, err)
	server := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(listener) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = server.Close()
			s.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

func freeAddr(t *testing.T) string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := listener.Addr().String()
	require.NoError(t, listener.Close())
	return addr
}

func TestGoClientWaitsForAggregatorAndSurvivesItsRestart(t *testing.T) {
	addr := freeAddr(t)
	store := DirStore{Dir: t.TempDir()}
	newServer := func() *Server {
		s, err := NewServer(testContext(t), ServerOptions{Job: testJob, Store: store, Policy: Policy{Participants: 1, ExitRound: 4}})
		require.NoError(t, err)
		return s
	}
	client, err := NewClient(ClientOptions{URL: "ws://" + addr + "/FedAvg", ClientID: "go", JobName: testJob, Binary: true, DType: Float64,
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	require.NoError(t, err)

	var stopMu sync.Mutex
	var stopFirst func()
	restarted := make(chan struct{})
	trainer := &plusOne{hook: func(round int) {
		stopMu.Lock()
		defer stopMu.Unlock()
		if round == 2 && stopFirst != nil {
			// The aggregator dies while the client trains round 3.
			stopFirst()
			stopFirst = nil
			go func() {
				time.Sleep(200 * time.Millisecond)
				serveOn(t, addr, newServer())
				close(restarted)
			}()
		}
	}}
	done := make(chan error, 1)
	var final *Aggregate
	go func() {
		var err error
		final, err = client.Run(testContext(t), nil, trainer)
		done <- err
	}()
	// The trainer started first: the aggregator comes up later.
	time.Sleep(150 * time.Millisecond)
	stopMu.Lock()
	stopFirst = serveOn(t, addr, newServer())
	stopMu.Unlock()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("client did not finish")
	}
	<-restarted
	require.Equal(t, 4, final.Round)
	// Four trainings, one per round: the update trained while the
	// aggregator was down was resent to the restarted one (which resumed at
	// round 2), not trained again.
	require.Equal(t, []int{0, 1, 2, 3}, trainer.rounds)
	require.Equal(t, []float64{4, 4, 4, 4}, final.Weights[0].Values)
}

func TestGoClientRefusedWithoutToken(t *testing.T) {
	_, url := startServer(t, ServerOptions{Admission: Admission{Token: "secret"}, Policy: Policy{Participants: 1, ExitRound: 1}})
	client, err := NewClient(ClientOptions{URL: url, ClientID: "go", JobName: testJob, Token: "wrong"})
	require.NoError(t, err)
	_, err = client.Run(testContext(t), nil, &plusOne{})
	require.ErrorIs(t, err, ErrRefused)

	client, err = NewClient(ClientOptions{URL: url, ClientID: "go", JobName: testJob, Token: "secret"})
	require.NoError(t, err)
	agg, err := client.Run(testContext(t), nil, &plusOne{})
	require.NoError(t, err)
	require.Equal(t, 1, agg.Round)
}

func TestTargetMetricStopsTraining(t *testing.T) {
	target, err := ParseTargetMetric("accuracy>=0.9")
	require.NoError(t, err)
	s, url := startServer(t, ServerOptions{Admission: Admission{Token: testToken}, Policy: Policy{Participants: 1, ExitRound: 10, Target: target}})
	client, err := NewClient(ClientOptions{URL: url, ClientID: "go", JobName: testJob, Binary: true, Token: testToken})
	require.NoError(t, err)
	accuracy := []float64{0.5, 0.8, 0.95, 0.99}
	agg, err := client.Run(testContext(t), nil, &plusOne{metric: func(round int) float64 { return accuracy[round] }})
	require.NoError(t, err)
	require.Equal(t, 3, agg.Round)
	require.Equal(t, 0.95, agg.Metrics["accuracy"])
	stats := s.Stats()
	require.True(t, stats.Finished)
	require.Contains(t, stats.Reason, "accuracy>=0.9")
}

func TestParseTargetMetric(t *testing.T) {
	got, err := ParseTargetMetric(" loss <= 0.05 ")
	require.NoError(t, err)
	require.Equal(t, &TargetMetric{Name: "loss", AtMost: true, Value: 0.05}, got)
	require.True(t, got.Reached(map[string]float64{"loss": 0.04}))
	require.False(t, got.Reached(map[string]float64{"loss": 0.06}))
	require.False(t, got.Reached(map[string]float64{"accuracy": 1}))
	for _, bad := range []string{"accuracy", ">=0.9", "accuracy>=x", "accuracy>=NaN", "accuracy=0.9"} {
		_, err := ParseTargetMetric(bad)
		require.Error(t, err, bad)
	}
}

// A model past upstream's 16 MiB JSON cap travels as binary frames: 5 M
// float32 values are 20 MB.
// A Go client without the token gets JSON frames (binary is for token
// holders); its recv_weight still carries the round's metrics.
func TestAnonymousGoClientGetsMetricsOverJSON(t *testing.T) {
	target, err := ParseTargetMetric("accuracy>=0.9")
	require.NoError(t, err)
	_, url := startServer(t, ServerOptions{Admission: Admission{Token: testToken, AllowAnonymous: true}, Policy: Policy{Participants: 1, ExitRound: 10, Target: target}})
	client, err := NewClient(ClientOptions{URL: url, ClientID: "go", JobName: testJob, Binary: true})
	require.NoError(t, err)
	accuracy := []float64{0.5, 0.8, 0.95, 0.99}
	agg, err := client.Run(testContext(t), nil, &plusOne{metric: func(round int) float64 { return accuracy[round] }})
	require.NoError(t, err)
	require.Equal(t, 3, agg.Round)
	require.Equal(t, 0.95, agg.Metrics["accuracy"])
}

func TestBinaryUpdateLargerThanJSONCap(t *testing.T) {
	_, url := startServer(t, ServerOptions{Admission: Admission{Token: testToken}, Policy: Policy{Participants: 1, ExitRound: 1}})
	client, err := NewClient(ClientOptions{URL: url, ClientID: "go", JobName: testJob, Binary: true, Token: testToken})
	require.NoError(t, err)
	big := Weights{NewLayer(5_000_000)}
	agg, err := client.Run(testContext(t), big, TrainerFunc(func(_ context.Context, req TrainRequest) (TrainResult, error) {
		req.Global[0].Values[4_999_999] = 0.5
		return TrainResult{Weights: req.Global, NumSamples: 1}, nil
	}))
	require.NoError(t, err)
	require.Equal(t, 0.5, agg.Weights[0].Values[4_999_999])

}

func TestJSONUpdateAboveCapEndsRun(t *testing.T) {
	_, url := startServer(t, ServerOptions{MaxJSONMessageBytes: 1 << 20, Policy: Policy{Participants: 1, ExitRound: 1}})
	client, err := NewClient(ClientOptions{URL: url, ClientID: "json", JobName: testJob})
	require.NoError(t, err)
	_, err = client.Run(testContext(t), nil, TrainerFunc(func(context.Context, TrainRequest) (TrainResult, error) {
		return TrainResult{Weights: Weights{NewLayer(300_000)}, NumSamples: 1}, nil
	}))
	require.ErrorContains(t, err, "1009")
}

func TestTrainerErrorEndsRun(t *testing.T) {
	_, url := startServer(t, ServerOptions{Policy: Policy{Participants: 1, ExitRound: 1}})
	client, err := NewClient(ClientOptions{URL: url, ClientID: "go", JobName: testJob})
	require.NoError(t, err)
	boom := errors.New("out of memory")
	_, err = client.Run(testContext(t), nil, TrainerFunc(func(context.Context, TrainRequest) (TrainResult, error) {
		return TrainResult{}, boom
	}))
	require.ErrorIs(t, err, boom)
}

func TestNewClientRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string]ClientOptions{
		"http URL":  {URL: "http://x:1/FedAvg", ClientID: "a"},
		"no id":     {URL: "ws://x:1/FedAvg"},
		"bad dtype": {URL: "ws://x:1/FedAvg", ClientID: "a", DType: 3},
		"neg mu":    {URL: "ws://x:1/FedAvg", ClientID: "a", Mu: -1},
	} {
		_, err := NewClient(opts)
		require.Error(t, err, name)
	}
}
