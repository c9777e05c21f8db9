package managers

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
)

func TestForwarderRelaysInUpstreamShape(t *testing.T) {
	base := WorkerMessage{Name: "fl-train-0", Namespace: "ns", OwnerName: "fl", OwnerKind: KindFederatedLearningJob, Kind: "train", Status: "running"}
	withResults := base
	withResults.Results = []map[string]any{{"format": "pb", "url": "/models/m.pb", "metrics": map[string]any{"acc": 0.9}}}
	withResults.OwnerInfo = map[string]any{"currentRound": 3}
	emptyResults := base
	emptyResults.Results = []map[string]any{}
	wrongKind := base
	wrongKind.OwnerKind = KindJointInferenceService
	unencodable := base
	unencodable.OwnerInfo = map[string]any{"loss": math.NaN()}

	tests := map[string]struct {
		msg         WorkerMessage
		reporterErr error
		wantContent string
		wantErr     string
		wantInvalid bool
	}{
		"results and owner info": {
			msg:         withResults,
			wantContent: `{"phase":"train","status":"running","output":{"models":[{"format":"pb","metrics":{"acc":0.9},"url":"/models/m.pb"}],"ownerInfo":{"currentRound":3}},"worker":"fl-train-0"}`,
		},
		"neither results nor owner info become null": {
			msg:         base,
			wantContent: `{"phase":"train","status":"running","output":{"models":null,"ownerInfo":null},"worker":"fl-train-0"}`,
		},
		"empty results stay an empty list": {
			msg:         emptyResults,
			wantContent: `{"phase":"train","status":"running","output":{"models":[],"ownerInfo":null},"worker":"fl-train-0"}`,
		},
		"message for another kind": {
			msg:         wrongKind,
			wantErr:     `ownerKind "jointinferenceservice" sent to the federatedlearningjob manager`,
			wantInvalid: true,
		},
		"value JSON cannot carry": {
			msg:         unencodable,
			wantErr:     "encoding the report of worker fl-train-0",
			wantInvalid: true,
		},
		"reporter failure is passed on": {
			msg:         base,
			reporterErr: errCommit,
			wantErr:     "queueing the report of worker fl-train-0 about federatedlearningjob/ns/fl for GM: commit failed",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reporter := &fakeReporter{err: tc.reporterErr}
			forwarder, err := NewForwarder(KindFederatedLearningJob, reporter)
			require.NoError(t, err)
			err = forwarder.HandleWorkerMessage(t.Context(), tc.msg)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Equal(t, tc.wantInvalid, errors.Is(err, ErrInvalidMessage))
				require.Empty(t, reporter.reports)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []string{"federatedlearningjob/ns/fl"}, reporter.keys)
			require.Len(t, reporter.reports, 1)
			require.JSONEq(t, tc.wantContent, reporter.reports[0])
		})
	}
}

func TestNewForwarderValidates(t *testing.T) {
	tests := map[string]struct {
		kind     string
		reporter Reporter
		wantErr  string
	}{
		"empty kind":      {kind: "", reporter: &fakeReporter{}, wantErr: "must be non-empty and lower case"},
		"upper-case kind": {kind: "FederatedLearningJob", reporter: &fakeReporter{}, wantErr: "must be non-empty and lower case"},
		"no reporter":     {kind: KindFederatedLearningJob, wantErr: "reporter is nil"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewForwarder(tc.kind, tc.reporter)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestWorkerMessageOwnerKey(t *testing.T) {
	msg := WorkerMessage{Namespace: "ns", OwnerName: "il", OwnerKind: "incrementallearningjob"}
	require.Equal(t, channel.Key{Kind: "incrementallearningjob", Namespace: "ns", Name: "il"}, msg.OwnerKey())
}
