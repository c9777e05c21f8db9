package federated

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// refusingLC answers the first refusals posts with the LC's in-body refusal (outcome, as the LC
// answers a report its full store cannot take) and takes the rest, recording each report's status.
type refusingLC struct {
	mu       sync.Mutex
	refusals int
	outcome  int
	posts    []string
	taken    []string
}

func (l *refusingLC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg lc.Message
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.posts = append(l.posts, msg.Status)
	if l.refusals > 0 {
		l.refusals--
		_, _ = fmt.Fprintf(w, `{"Status":%d,"Message":"the store is full"}`, l.outcome)
		return
	}
	l.taken = append(l.taken, msg.Status)
	_, _ = w.Write([]byte(`{"Status":200,"Message":"OK"}`))
}

func (l *refusingLC) counts() (posts, taken []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.posts...), append([]string(nil), l.taken...)
}

// clientReportingTo returns a trainer's client whose reports go to l, served over HTTP.
func clientReportingTo(t *testing.T, l *refusingLC) *Client {
	t.Helper()
	server := httptest.NewServer(l)
	t.Cleanup(server.Close)
	reporter, err := lc.New(lc.Options{Server: server.URL, Worker: "w", Attempts: 1, Interval: time.Millisecond})
	require.NoError(t, err)
	c, err := NewClient(ClientOptions{URL: "ws://127.0.0.1:1/FedAvg", ClientID: "w", JobName: "j", Namespace: "ns",
		Reporter: reporter, InitialBackoff: time.Millisecond, FinalReportTimeout: time.Minute})
	require.NoError(t, err)
	return c
}

// TestTheLastRoundsReportIsSentUntilTheLCTakesIt: an LC whose store is full refuses reports
// (503 in the body); a running round's report is not chased (the next round's repeats its
// state), but the last one, the job's result, is sent again until the LC takes it.
func TestTheLastRoundsReportIsSentUntilTheLCTakesIt(t *testing.T) {
	l := &refusingLC{refusals: 1, outcome: http.StatusServiceUnavailable}
	c := clientReportingTo(t, l)

	c.report(testContext(t), &Aggregate{Round: 3, Exit: ExitContinue}, time.Now())
	posts, taken := l.counts()
	require.Equal(t, []string{StatusRunning}, posts, "a running report is sent once")
	require.Empty(t, taken)

	l.mu.Lock()
	l.refusals = 4
	l.mu.Unlock()
	c.report(testContext(t), &Aggregate{Round: 4, Exit: ExitOK}, time.Now())
	posts, taken = l.counts()
	require.Len(t, posts, 1+5, "the last report was sent until the LC took it")
	require.Equal(t, []string{StatusCompleted}, taken)
}

// TestALastReportTheLCRefusesForGoodIsNotSentAgain: a 400 names a report that can never be
// taken; sending it again would only wait out the timeout.
func TestALastReportTheLCRefusesForGoodIsNotSentAgain(t *testing.T) {
	l := &refusingLC{refusals: 100, outcome: http.StatusBadRequest}
	c := clientReportingTo(t, l)
	c.report(testContext(t), &Aggregate{Round: 4, Exit: ExitOK}, time.Now())
	posts, taken := l.counts()
	require.Len(t, posts, 1)
	require.Empty(t, taken)
}

// TestALastReportIsNotChasedPastTheContext: a trainer told to stop while its LC refuses the last
// report stops sending, even through a reporter that does not look at the context itself.
func TestALastReportIsNotChasedPastTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	reporter := &cancellingReporter{cancel: cancel}
	c, err := NewClient(ClientOptions{URL: "ws://127.0.0.1:1/FedAvg", ClientID: "w", JobName: "j", Namespace: "ns",
		Reporter: reporter, InitialBackoff: time.Millisecond, FinalReportTimeout: time.Minute})
	require.NoError(t, err)
	c.report(ctx, &Aggregate{Round: 4, Exit: ExitOK}, time.Now())
	require.Equal(t, 1, reporter.calls, "the report was sent again after the trainer was told to stop")
}

// cancellingReporter refuses every report as a full store would, ignoring the context, and
// cancels the trainer's context at the first.
type cancellingReporter struct {
	cancel context.CancelFunc
	calls  int
}

func (r *cancellingReporter) Report(context.Context, lc.Message) error {
	r.calls++
	r.cancel()
	return &lc.StatusError{StatusCode: http.StatusServiceUnavailable, InBody: true, Message: "the store is full"}
}
