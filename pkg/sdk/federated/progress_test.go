package federated

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// A round closed at its deadline tells Go clients (JSON and binary) how it
// closed, and their reports carry it with the aggregate's metrics, while
// the Python client's frames keep upstream's keys only.
func TestGoClientsReportRoundProgress(t *testing.T) {
	s, url := startServer(t, ServerOptions{Policy: Policy{Participants: 3, MinClients: 2, RoundDeadline: 200 * time.Millisecond, ExitRound: 3}})
	// The Python client joins and stays silent: it is late in every round.
	p, _ := dialPython(t, url, "trainworker-py")

	atRound1, release := make(chan struct{}), make(chan struct{})
	reporters := map[string]*recordingReporter{}
	type outcome struct {
		agg *Aggregate
		err error
	}
	done := make(chan outcome, 2)
	for _, id := range []string{"trainworker-json", "trainworker-bin"} {
		trainer := &plusOne{}
		if id == "trainworker-json" {
			// While it trains round 2, the Python client sends an update
			// built on the initial model: late, discarded and counted.
			trainer.hook = func(round int) {
				if round == 1 {
					close(atRound1)
					<-release
				}
			}
		}
		reporters[id] = &recordingReporter{}
		client, err := NewClient(ClientOptions{
			URL: url, ClientID: id, JobName: testJob, Namespace: "default", Binary: id == "trainworker-bin",
			Reporter: reporters[id], ModelURL: "/models/global.bin",
			Evaluate: func(_ context.Context, agg *Aggregate) (map[string]float64, error) {
				return map[string]float64{"accuracy": float64(agg.Round) / 10}, nil
			},
		})
		require.NoError(t, err)
		go func() {
			agg, err := client.Run(testContext(t), Weights{NewLayer(4)}, trainer)
			done <- outcome{agg, err}
		}()
	}
	<-atRound1
	p.sendUpdate(1, `[[9.0, 9.0, 9.0, 9.0]]`)
	late, _ := p.recvWeight()
	require.Equal(t, 1, decodeRecv(t, late).Data.RoundNumber, "the late client gets the current model")
	for _, key := range []string{"round_clients", "participants", "late_clients", "late_updates"} {
		require.NotContains(t, late, key, "a Python client's recv_weight has upstream's keys only")
	}
	close(release)
	for range 2 {
		result := <-done
		require.NoError(t, result.err)
		require.Equal(t, 3, result.agg.Round)
	}
	require.Equal(t, 1, s.Stats().Late)

	for id, r := range reporters {
		reports := r.messages()
		require.Len(t, reports, 3, id)
		for i, report := range reports {
			info := report.OwnerInfo.(map[string]any)
			require.Equal(t, i+1, info["currentRound"], id)
			require.Equal(t, 2, info["roundClients"], id)
			require.Equal(t, 3, info["participants"], id)
			require.Equal(t, []string{"trainworker-py"}, info["lateClients"], id)
			wantLate := 0
			if i > 0 {
				wantLate = 1
			}
			require.Equal(t, wantLate, info["lateUpdates"], "%s round %d", id, i+1)
			require.Equal(t, []map[string]any{{"format": "bin", "url": "/models/global.bin",
				"metrics": map[string]float64{"accuracy": float64(i+1) / 10}}}, report.Results, id)
		}
		require.Equal(t, StatusCompleted, reports[2].Status)
	}
}

// A round everyone answered reports no lateClients key; a failing
// evaluation reports no results.
func TestReportOmitsLateClientsAndFailedMetrics(t *testing.T) {
	c, err := NewClient(ClientOptions{URL: "ws://127.0.0.1:1/FedAvg", ClientID: "w", JobName: "j", Namespace: "ns",
		Evaluate: func(context.Context, *Aggregate) (map[string]float64, error) { return nil, errors.New("no test data") }})
	require.NoError(t, err)
	agg := &Aggregate{Round: 4, TotalSample: 30, Weights: Weights{NewLayer(1)}, Exit: ExitContinue,
		Progress: Progress{RoundClients: 3, Participants: 3, LateUpdates: 2}}
	start := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	msg := c.reportMessage(testContext(t), agg, start, start.Add(time.Minute))
	require.Equal(t, map[string]any{"currentRound": 4, "sampleCount": 30, "startTime": "2026-12-05 06:00:00",
		"updateTime": "2026-12-05 06:01:00", "roundClients": 3, "participants": 3, "lateUpdates": 2}, msg.OwnerInfo)
	require.Nil(t, msg.Results)
	// A checkpoint-restored model has no progress: upstream's four keys only.
	msg = c.reportMessage(testContext(t), &Aggregate{Round: 4}, start, start)
	require.Len(t, msg.OwnerInfo, 4)
}

// Extended JSON frames parse back into the same Progress, and binary too.
func TestProgressRoundTrip(t *testing.T) {
	agg := &Aggregate{Round: 2, TotalSample: 5, Weights: Weights{NewLayer(2)}, Exit: ExitContinue, Client: "a", JobName: "j",
		Progress: Progress{RoundClients: 2, Participants: 3, LateClients: []string{"c\"1"}, LateUpdates: 7}}
	frame := recvWeightJSON(agg, true)
	require.True(t, strings.Contains(string(frame), `"exit_flag":"continue","round_clients":2,"participants":3,"late_clients":["c\"1"],"late_updates":7}`), string(frame))
	back, err := parseRecvWeight(false, frame)
	require.NoError(t, err)
	require.Equal(t, agg.Progress, back.Progress)
	require.NotContains(t, string(recvWeightJSON(agg, false)), "round_clients")
	binFrame, err := recvWeightBinary(agg, Float32)
	require.NoError(t, err)
	back, err = parseRecvWeight(true, binFrame)
	require.NoError(t, err)
	require.Equal(t, agg.Progress, back.Progress)
}

type recordingReporter struct {
	mu   sync.Mutex
	msgs []lc.Message
}

func (r *recordingReporter) Report(_ context.Context, msg lc.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
	return nil
}

func (r *recordingReporter) messages() []lc.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]lc.Message(nil), r.msgs...)
}

// The aggregator logs its policy; a nil target printed a panic message.
func TestNilTargetMetricString(t *testing.T) {
	var target *TargetMetric
	require.Equal(t, "none", target.String())
	require.Equal(t, "accuracy>=0.9", (&TargetMetric{Name: "accuracy", Value: 0.9}).String())
}
