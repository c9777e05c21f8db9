package federatedlearning

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
)

func TestReportsShowRoundLateClientsAndMetrics(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()

	// Upstream's Python trainer: round progress only.
	require.NoError(t, f.report(`{"phase":"train","status":"running","output":{"models":null,
		"ownerInfo":{"currentRound":1,"sampleCount":600,"startTime":"2026-01-02 03:00:00","updateTime":"2026-01-02 03:01:00"}},"worker":"fl-train-0"}`))
	f.sync()
	job := f.job()
	require.Equal(t, int32(1), job.Status.Round)
	training := meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionTraining)
	require.NotNil(t, training)
	require.Equal(t, metav1.ConditionTrue, training.Status)
	require.Equal(t, "DoTraining", training.Reason)
	require.Equal(t, "Round 1 reaches at 2026-01-02 03:01:00", training.Message)
	require.Nil(t, meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionClientsLate), "upstream trainers say nothing about lateness")
	require.Empty(t, job.Status.Metrics)

	// A Go trainer: round 3 closed at its deadline without fl-train-1, with the model's evaluation.
	require.NoError(t, f.report(`{"phase":"train","status":"running","output":{
		"models":[{"format":"json","url":"/model/fl/model.pb","metrics":{"accuracy":0.9712,"loss":[0.08]}}],
		"ownerInfo":{"currentRound":3,"sampleCount":600,"updateTime":"2026-01-02 03:05:00","roundClients":1,"participants":2,
		"lateClients":["fl-train-1"],"lateUpdates":1}},"worker":"fl-train-0"}`))
	// An older round reported late by the other trainer changes nothing.
	require.NoError(t, f.reportFrom("edge-2", `{"phase":"train","status":"running","output":{"models":[{"metrics":{"accuracy":0.5}}],
		"ownerInfo":{"currentRound":2,"updateTime":"2026-01-02 03:03:00","roundClients":2,"participants":2}},"worker":"fl-train-1"}`))
	f.sync()
	job = f.job()
	require.Equal(t, int32(3), job.Status.Round)
	require.Equal(t, "Round 3 reaches at 2026-01-02 03:05:00", meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionTraining).Message)
	late := meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionClientsLate)
	require.NotNil(t, late)
	require.Equal(t, metav1.ConditionTrue, late.Status)
	require.Equal(t, reasonRoundDeadline, late.Reason)
	require.Equal(t, "round 3 closed at its deadline without fl-train-1; 1 late updates discarded so far", late.Message)
	require.Equal(t, "accuracy=0.9712, loss=0.08", job.Status.Metrics)
	m, err := f.sedna.SednaV1alpha1().Models("ns").Get(context.Background(), "surface-defect", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []sednav1.Metric{{Key: "accuracy", Value: "0.9712"}, {Key: "loss", Value: "0.08"}}, m.Status.Metrics)
	require.NotNil(t, m.Status.UpdateTime)

	// Round 4 had everyone.
	require.NoError(t, f.reportFrom("edge-2", `{"phase":"train","status":"completed","output":{"models":[{"metrics":{"accuracy":0.98}}],
		"ownerInfo":{"currentRound":4,"updateTime":"2026-01-02 03:07:00","roundClients":2,"participants":2,"lateUpdates":1}},"worker":"fl-train-1"}`))
	f.sync()
	job = f.job()
	late = meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionClientsLate)
	require.Equal(t, metav1.ConditionFalse, late.Status)
	require.Equal(t, reasonAllClientsReported, late.Reason)
	require.Equal(t, "accuracy=0.98", job.Status.Metrics)

	// A GM restart forgets the reports but not the status.
	f.restartGM()
	f.sync()
	require.Equal(t, int32(4), f.job().Status.Round)
	require.Equal(t, "accuracy=0.98", f.job().Status.Metrics)

	// The job ends: Training turns False and keeps its last round.
	for _, name := range []string{"fl-aggregation", "fl-train-0", "fl-train-1"} {
		f.setPhase(name, corev1.PodSucceeded)
	}
	f.sync()
	training = meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionTraining)
	require.Equal(t, metav1.ConditionFalse, training.Status)
	require.Equal(t, "Round 4 reaches at 2026-01-02 03:07:00", training.Message)
}

// Found by the fault campaign (test/chaos, seed 1): a trainer that never joined the aggregator
// is named by no report (the aggregator names only clients it has seen), and GM said
// "round 20 had every training worker" of rounds that closed with 2 of 3.
func TestRoundWithFewerClientsThanParticipantsIsLateEvenWithoutNames(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	require.NoError(t, f.report(`{"phase":"train","status":"running","output":{"models":[{"metrics":{"accuracy":0.65}}],
		"ownerInfo":{"currentRound":20,"updateTime":"2026-01-02 03:05:00","roundClients":1,"participants":2,"lateClients":null}},"worker":"fl-train-0"}`))
	f.sync()
	late := meta.FindStatusCondition(f.job().Status.Conditions, sednav1.ConditionClientsLate)
	require.NotNil(t, late)
	require.Equal(t, metav1.ConditionTrue, late.Status)
	require.Equal(t, reasonRoundDeadline, late.Reason)
	require.Equal(t, "round 20 closed with 1 of 2 training workers (the others have not joined the aggregator)", late.Message)
}

func TestReportsFromStrangersOrMalformedAreNotShown(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	// A name that is not one of the job's pods (anything on the node network can post one).
	require.ErrorContains(t, f.report(`{"phase":"train","status":"running","output":{"ownerInfo":{"currentRound":99,"updateTime":"x"}},"worker":"intruder"}`),
		`worker "intruder" is not a pod of the job`)
	f.sync()
	require.Equal(t, int32(0), f.job().Status.Round)

	for name, content := range map[string]string{
		"negative round":      `{"phase":"train","output":{"ownerInfo":{"currentRound":-1}},"worker":"fl-train-0"}`,
		"fractional round":    `{"phase":"train","output":{"ownerInfo":{"currentRound":1.5}},"worker":"fl-train-0"}`,
		"huge round":          `{"phase":"train","output":{"ownerInfo":{"currentRound":3000000000}},"worker":"fl-train-0"}`,
		"metric of an object": `{"phase":"train","output":{"models":[{"metrics":{"accuracy":{"a":1}}}]},"worker":"fl-train-0"}`,
		"long metric":         `{"phase":"train","output":{"models":[{"metrics":{"accuracy":"` + strings.Repeat("9", 200) + `"}}]},"worker":"fl-train-0"}`,
		"unknown field":       `{"phase":"train","surprise":1}`,
	} {
		require.Error(t, f.report(content), name)
	}
	require.ErrorContains(t, f.c.HandleReport(context.Background(), "edge-1", runtime.Key(Kind, "ns", "other"), []byte(`{"phase":"train"}`)),
		"not known to GM")
	f.sync()
	require.Equal(t, int32(0), f.job().Status.Round)
	require.Empty(t, f.job().Status.Metrics)
}

// TestTheLCsForwardedReportIsWhatGMReads feeds the LC's own encoding of a trainer's message (the
// F1 shape a Go trainer sends, with a dropped count) to the controller: the two sides agree.
func TestTheLCsForwardedReportIsWhatGMReads(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	msg := managers.WorkerMessage{
		Name: "fl-train-1", Namespace: "ns", OwnerName: "fl", OwnerKind: "federatedlearningjob", Kind: "train", Status: "running",
		OwnerInfo: map[string]any{"currentRound": json.Number("7"), "sampleCount": 600, "startTime": "2026-01-02 03:00:00",
			"updateTime": "2026-01-02 03:10:00", "roundClients": 1, "participants": 2, "lateClients": []any{"fl-train-0"}, "lateUpdates": 2},
		Results: []map[string]any{{"format": "json", "url": "/model/fl/model.json", "metrics": map[string]any{"accuracy": 0.9123}}},
	}
	content, err := managers.EncodeForwardedReport(msg)
	require.NoError(t, err)
	var withDrops map[string]any
	require.NoError(t, json.Unmarshal(content, &withDrops))
	withDrops["dropped"] = 3
	content, err = json.Marshal(withDrops)
	require.NoError(t, err)
	require.NoError(t, f.reportFrom("edge-2", string(content)))
	f.sync()
	job := f.job()
	require.Equal(t, int32(7), job.Status.Round)
	require.Equal(t, "accuracy=0.9123", job.Status.Metrics)
	require.Equal(t, "round 7 closed at its deadline without fl-train-0; 2 late updates discarded so far",
		meta.FindStatusCondition(job.Status.Conditions, sednav1.ConditionClientsLate).Message)
}

func TestReportsWithoutAWorkerOrFromAnotherNodeAreRefused(t *testing.T) {
	f := newFixture(t, flJob())
	f.sync()
	round99 := `"output":{"ownerInfo":{"currentRound":99,"updateTime":"x"}}`
	// No worker named: the pod check cannot be skipped.
	require.ErrorContains(t, f.report(`{"phase":"train","status":"running",`+round99+`}`), "names no worker")
	require.ErrorContains(t, f.report(`{"phase":"train","status":"running"}`), "names no worker")
	// fl-train-1 runs on edge-2: edge-1's LC cannot report for it.
	require.ErrorContains(t, f.report(`{"phase":"train","status":"running",`+round99+`,"worker":"fl-train-1"}`),
		`worker fl-train-1 runs on node "edge-2", not on the reporting node "edge-1"`)
	// The aggregation pod runs on no edge node of the job's trainers.
	require.ErrorContains(t, f.report(`{"phase":"train","status":"running",`+round99+`,"worker":"fl-aggregation"}`),
		"not on the reporting node")
	f.sync()
	require.Equal(t, int32(0), f.job().Status.Round)

	require.NoError(t, f.reportFrom("edge-2", `{"phase":"train","status":"running",`+round99+`,"worker":"fl-train-1"}`))
	f.sync()
	require.Equal(t, int32(99), f.job().Status.Round)
}
