package federated

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// One FedAvgM step computed by hand: Δ = aggregate − global = (1, −2);
// v = 0.5·(0.5, −1) + Δ = (1.25, −2.5); next = global + 2·v = (3.5, −3).
func TestServerOptimizerStepHandComputed(t *testing.T) {
	opt := ServerOptimizer{LR: 2, Momentum: 0.5}
	global := Weights{{Shape: []int{2}, Values: []float64{1, 2}}}
	aggregate := Weights{{Shape: []int{2}, Values: []float64{2, 0}}}
	velocity := Weights{{Shape: []int{2}, Values: []float64{0.5, -1}}}
	next, nextVelocity, err := opt.Step(global, aggregate, velocity)
	require.NoError(t, err)
	require.Equal(t, Weights{{Shape: []int{2}, Values: []float64{3.5, -3}}}, next)
	require.Equal(t, Weights{{Shape: []int{2}, Values: []float64{1.25, -2.5}}}, nextVelocity)
	// The inputs are unchanged.
	require.Equal(t, []float64{1, 2}, global[0].Values)
	require.Equal(t, []float64{0.5, -1}, velocity[0].Values)

	// Without a velocity yet the step is global + LR·Δ.
	next, nextVelocity, err = opt.Step(global, aggregate, nil)
	require.NoError(t, err)
	require.Equal(t, []float64{3, -2}, next[0].Values)
	require.Equal(t, []float64{1, -2}, nextVelocity[0].Values)

	// A server LR alone keeps no velocity.
	next, nextVelocity, err = ServerOptimizer{LR: 1.5}.Step(global, aggregate, nil)
	require.NoError(t, err)
	require.Equal(t, []float64{2.5, -1}, next[0].Values)
	require.Nil(t, nextVelocity)

	_, _, err = opt.Step(global, Weights{{Shape: []int{3}, Values: []float64{1, 2, 3}}}, nil)
	require.ErrorContains(t, err, "aggregate and global model")
}

func TestServerOptimizerPlainIsFedAvg(t *testing.T) {
	global := Weights{{Shape: []int{1}, Values: []float64{0.1}}}
	aggregate := Weights{{Shape: []int{1}, Values: []float64{0.7}}}
	for _, opt := range []ServerOptimizer{{}, {LR: 1}} {
		require.True(t, opt.Plain())
		next, velocity, err := opt.Step(global, aggregate, nil)
		require.NoError(t, err)
		require.Equal(t, aggregate, next, "bit for bit the aggregate (0.1 + (0.7 − 0.1) is not 0.7)")
		require.Nil(t, velocity)
	}
}

func TestServerOptimizerValidate(t *testing.T) {
	for _, bad := range []ServerOptimizer{{LR: -1}, {Momentum: 1}, {Momentum: -0.1}, {LR: 1, Momentum: 2}} {
		require.Error(t, bad.Validate(), "%+v", bad)
		_, err := NewServer(context.Background(), ServerOptions{Job: testJob, ServerOptimizer: bad, Policy: Policy{Participants: 1, ExitRound: 1}})
		require.ErrorContains(t, err, "server", "%+v", bad)
	}
	require.NoError(t, ServerOptimizer{LR: 1.5, Momentum: 0.9}.Validate())
}

// The server applies FedAvgM to every round, keeps the velocity in the
// checkpoint, and a restarted server continues exactly as if it had not
// stopped. With momentum 0.5 and LR 1 from the initial model (0, 0):
// round 1, update (2, 4): v = (2, 4), global (2, 4);
// round 2, update (3, 4): v = 0.5·(2, 4) + (1, 0) = (2, 2), global (4, 6);
// round 3 (after the restart), update (4, 6): v = (1, 1), global (5, 7).
func TestServerMomentumRoundsAndResume(t *testing.T) {
	store := DirStore{Dir: t.TempDir()}
	opts := ServerOptions{Store: store, Policy: Policy{Participants: 1, ExitRound: 3}, Initial: Weights{{Shape: []int{2}, Values: []float64{0, 0}}},
		ServerOptimizer: ServerOptimizer{LR: 1, Momentum: 0.5}}
	s, url := startServer(t, opts)
	a, _ := dialPython(t, url, "a")
	a.sendUpdate(5, `[[2.0, 4.0]]`)
	frame, _ := a.recvWeight()
	require.Equal(t, [][]float64{{2, 4}}, decodeRecv(t, frame).Data.Weights)
	a.sendUpdate(5, `[[3.0, 4.0]]`)
	frame, _ = a.recvWeight()
	require.Equal(t, [][]float64{{4, 6}}, decodeRecv(t, frame).Data.Weights)
	cp, err := store.Load(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, cp.Round)
	require.Equal(t, []float64{4, 6}, cp.Weights[0].Values)
	require.Equal(t, Weights{{Shape: []int{2}, Values: []float64{2, 2}}}, cp.Velocity)
	s.Close()

	// A server without momentum refuses the checkpoint rather than dropping
	// its velocity.
	_, err = NewServer(testContext(t), ServerOptions{Job: testJob, Store: store, Policy: opts.Policy})
	require.ErrorContains(t, err, "velocity")

	s2, url2 := startServer(t, opts)
	require.Equal(t, 2, s2.Stats().Round)
	p, _ := dialPython(t, url2, "a")
	p.sendUpdate(5, `[[9.0, 9.0]]`)
	frame, _ = p.recvWeight()
	require.Equal(t, 2, decodeRecv(t, frame).RoundNumber, "an update from the initial model is late")
	p.sendUpdate(5, `[[4.0, 6.0]]`)
	frame, _ = p.recvWeight()
	msg := decodeRecv(t, frame)
	require.Equal(t, 3, msg.RoundNumber)
	require.Equal(t, [][]float64{{5, 7}}, msg.Data.Weights)
	final := s2.Checkpoint()
	require.Equal(t, []float64{1, 1}, final.Velocity[0].Values)
}
