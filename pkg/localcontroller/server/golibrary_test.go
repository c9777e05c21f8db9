package server

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// TestGoLibraryAgainstTheLC: the Go worker library and this API agree on the token and on
// outcomes carried in a 200 answer's body.
func TestGoLibraryAgainstTheLC(t *testing.T) {
	f := newFixture(t, Options{})
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- f.server.Serve(ctx, listener) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
	})
	// The worker's published pod IP is 192.0.2.1; this client connects from 127.0.0.1.
	newClient := func(token string) *lc.Client {
		client, err := lc.New(lc.Options{
			Server: "http://" + listener.Addr().String(), Worker: "edge-0", Attempts: 2, Interval: time.Millisecond, Token: token,
		})
		require.NoError(t, err)
		return client
	}
	report := lc.Message{
		Name: "edge-0", Namespace: "ns", OwnerName: "ji", OwnerKind: lc.OwnerKindJointInference, Kind: lc.KindInference,
		Results: []any{}, OwnerInfo: map[string]any{"inferenceNumber": 1},
	}

	require.NoError(t, newClient(jiToken).Report(t.Context(), report), "the job's token is accepted from any address")
	require.Len(t, f.reporter.Reports(), 1)

	var statusErr *lc.StatusError
	err = newClient("").Report(t.Context(), report)
	require.ErrorAs(t, err, &statusErr, "without a token, 127.0.0.1 is not the worker's pod IP")
	require.Equal(t, lc.StatusError{StatusCode: http.StatusForbidden, Message: `no worker token, and 127.0.0.1 is not the pod IP of worker "edge-0" of this job on this node`}, *statusErr)

	err = newClient("not-the-token").Report(t.Context(), report)
	require.ErrorAs(t, err, &statusErr)
	require.Equal(t, http.StatusForbidden, statusErr.StatusCode)

	unknown := report
	unknown.OwnerName = "sedna"
	err = newClient(jiToken).Report(t.Context(), unknown)
	require.ErrorAs(t, err, &statusErr, "a dropped report is an error for the Go library")
	require.Equal(t, lc.StatusError{StatusCode: http.StatusNotFound, InBody: true, Message: "jointinferenceservice ns/sedna is not bound to this node"}, *statusErr)
	require.Len(t, f.reporter.Reports(), 1)
}
