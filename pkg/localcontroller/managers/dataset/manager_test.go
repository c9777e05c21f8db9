package dataset

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/managertest"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

func TestNewValidatesOptions(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "lc.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	resolver, err := datasetindex.NewResolver(t.TempDir(), []string{"/data"})
	require.NoError(t, err)

	tests := map[string]struct {
		st       *store.Store
		reporter managers.Reporter
		opts     Options
		wantErr  string
	}{
		"no store":         {reporter: &managertest.Reporter{}, opts: Options{Resolver: resolver}, wantErr: "store is nil"},
		"no reporter":      {st: st, opts: Options{Resolver: resolver}, wantErr: "reporter is nil"},
		"no resolver":      {st: st, reporter: &managertest.Reporter{}, wantErr: "no Resolver"},
		"relative rootfs":  {st: st, reporter: &managertest.Reporter{}, opts: Options{Resolver: resolver, Rootfs: "rootfs"}, wantErr: `rootfs "rootfs" is not an absolute path`},
		"defaults applied": {st: st, reporter: &managertest.Reporter{}, opts: Options{Resolver: resolver}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := New(tc.st, tc.reporter, tc.opts)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, DefaultPeriod, m.opts.Period)
			require.Equal(t, DefaultMaxS3Bytes, m.opts.MaxS3Bytes)
			require.Equal(t, "/", m.opts.Rootfs)
			require.Equal(t, Kind, m.Kind())
		})
	}
}

func TestMonitorReportsCountWhenItChanges(t *testing.T) {
	l := startLC(t, newNode(t), nil)
	l.run()
	l.writeFile("/data/train.txt", "a.jpg\nb.jpg\nc.jpg\n")
	key := l.putDataset("helmet", txt("/data/train.txt"))

	require.Equal(t, []Report{count(3)}, l.waitReports(1))
	reports := l.reporter.Reports()
	require.Equal(t, channel.Key{Kind: "dataset", Namespace: testNamespace, Name: "helmet"}, reports[0].Key)
	require.JSONEq(t, `{"numberOfSamples":3}`, string(reports[0].Content))

	// Unchanged passes report nothing.
	l.waitPasses(key.Name, 3)
	require.Len(t, l.reporter.Reports(), 1)

	l.appendFile("/data/train.txt", "d.jpg\ne.jpg\n")
	require.Equal(t, []Report{count(3), count(5)}, l.waitReports(2))

	// A rewritten, shorter file is recounted rather than taken for an append.
	l.writeFile("/data/train.txt", "z.jpg\n")
	require.Equal(t, []Report{count(3), count(5), count(1)}, l.waitReports(3))

	l.waitPasses(key.Name, 3)
	require.Equal(t, []Report{count(3), count(5), count(1)}, l.reports())
}

func TestMonitorReportsEmptyDatasetOnce(t *testing.T) {
	l := startLC(t, newNode(t), nil)
	l.run()
	l.writeFile("/data/empty.txt", "")
	l.putDataset("empty", txt("/data/empty.txt"))

	require.Equal(t, []Report{count(0)}, l.waitReports(1))
	l.waitPasses("empty", 3)
	require.Len(t, l.reporter.Reports(), 1)
}

func TestMonitorCountsCSVWithAnyCaseOfFormat(t *testing.T) {
	l := startLC(t, newNode(t), nil)
	l.run()
	l.writeFile("/data/labels.csv", "image,label\na.jpg,1\nb.jpg,0\n")
	l.putDataset("csv", sednav1.DatasetSpec{URL: "/data/labels.csv", Format: "CSV", NodeName: "edge-1"})
	require.Equal(t, []Report{count(2)}, l.waitReports(1))
}

func TestMonitorReportsEachProblemOnce(t *testing.T) {
	tests := map[string]struct {
		setup       func(l *lc)
		spec        sednav1.DatasetSpec
		tweak       func(*Options)
		wantReason  string
		wantMessage string
	}{
		"path outside the data roots": {
			setup:       func(l *lc) { l.writeFile("/etc/passwd", "root:x:0:0\n") },
			spec:        txt("/etc/passwd"),
			wantReason:  ReasonOutsideAllowedRoots,
			wantMessage: `host path "/etc/passwd" is not under any allowed data root`,
		},
		"dot-dot escaping the roots": {
			setup:       func(l *lc) { l.writeFile("/etc/passwd", "root:x:0:0\n") },
			spec:        txt("/data/../etc/passwd"),
			wantReason:  ReasonOutsideAllowedRoots,
			wantMessage: `contains a ".." element`,
		},
		"symlink leading outside the roots": {
			setup: func(l *lc) {
				l.writeFile("/etc/passwd", "root:x:0:0\n")
				require.NoError(l.t, os.Symlink("/etc/passwd", l.hostPath("/data/link.txt")))
			},
			spec:        txt("/data/link.txt"),
			wantReason:  ReasonOutsideAllowedRoots,
			wantMessage: "a symlink leads to",
		},
		"missing index": {
			spec:        txt("/data/missing.txt"),
			wantReason:  ReasonIndexNotFound,
			wantMessage: `"/data/missing.txt" does not exist`,
		},
		"binary index": {
			setup:       func(l *lc) { l.writeFile("/data/model.bin", "a.jpg\n\x00\x01\x02\n") },
			spec:        txt("/data/model.bin"),
			wantReason:  ReasonIndexNotText,
			wantMessage: "/data/model.bin",
		},
		"index above the size limit": {
			setup:       func(l *lc) { l.writeFile("/data/big.txt", strings.Repeat("sample.jpg\n", 10)) },
			spec:        txt("/data/big.txt"),
			tweak:       func(o *Options) { o.Counter.MaxFileSize = 32 },
			wantReason:  ReasonIndexTooLarge,
			wantMessage: "index file /data/big.txt is 110 bytes, more than the limit of 32",
		},
		"unsupported format": {
			setup:       func(l *lc) { l.writeFile("/data/train.json", "[]\n") },
			spec:        sednav1.DatasetSpec{URL: "/data/train.json", Format: "json", NodeName: "edge-1"},
			wantReason:  ReasonUnsupportedFormat,
			wantMessage: `dataset format "json"`,
		},
		"unsupported URL scheme": {
			spec:        txt("https://example.com/train.txt"),
			wantReason:  ReasonReadFailed,
			wantMessage: `unsupported scheme "https"`,
		},
		"s3 without credentialName": {
			spec:        txt("s3://datasets/train.txt"),
			wantReason:  ReasonReadFailed,
			wantMessage: "spec.credentialName names no Secret",
		},
		"s3 credential Secret not sent by GM": {
			spec:        sednav1.DatasetSpec{URL: "s3://datasets/train.txt", Format: "txt", NodeName: "edge-1", CredentialName: "minio"},
			wantReason:  ReasonReadFailed,
			wantMessage: "credential Secret default/minio is not on this node",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := startLC(t, newNode(t), tc.tweak)
			l.run()
			if tc.setup != nil {
				tc.setup(l)
			}
			l.putDataset("broken", tc.spec)

			reports := l.waitReports(1)
			l.waitPasses("broken", 3)
			require.Len(t, l.reporter.Reports(), 1, "a persisting problem is reported once: %q", l.reporter.Contents())
			require.NotNil(t, reports[0].Condition, "report %q", l.reporter.Contents())
			require.Equal(t, 0, reports[0].NumberOfSamples)
			require.Equal(t, tc.wantReason, reports[0].Condition.Reason)
			require.Contains(t, reports[0].Condition.Message, tc.wantMessage)
			require.NotContains(t, reports[0].Condition.Message, l.node.rootfs, "the LC's own paths stay out of conditions")
		})
	}
}

func TestMonitorClearsAProblemWithTheNextCount(t *testing.T) {
	l := startLC(t, newNode(t), nil)
	l.run()
	l.putDataset("late", txt("/data/late.txt"))

	reports := l.waitReports(1)
	require.Equal(t, ReasonIndexNotFound, reports[0].Condition.Reason)

	l.writeFile("/data/late.txt", "a.jpg\nb.jpg\n")
	reports = l.waitReports(2)
	require.Equal(t, count(2), reports[1], "the count after a problem carries no condition")
	require.JSONEq(t, `{"numberOfSamples":2}`, l.reporter.Contents()[1])

	// Another problem reports the last count with the new condition.
	l.writeFile("/data/late.txt", "a.jpg\n\x00\n")
	reports = l.waitReports(3)
	require.Equal(t, 2, reports[2].NumberOfSamples)
	require.Equal(t, ReasonIndexNotText, reports[2].Condition.Reason)

	// The same count as before the problem is reported again, to clear it.
	l.writeFile("/data/late.txt", "a.jpg\nb.jpg\n")
	reports = l.waitReports(4)
	require.Equal(t, count(2), reports[3])

	l.waitPasses("late", 3)
	require.Len(t, l.reporter.Reports(), 4)
}

func TestSpecChangeRestartsTheMonitor(t *testing.T) {
	l := startLC(t, newNode(t), nil)
	l.run()
	l.writeFile("/etc/shadow", "secret\n")
	l.writeFile("/data/ok.txt", "a\nb\nc\nd\n")
	key := l.putDataset("moving", txt("/etc/shadow"))

	reports := l.waitReports(1)
	require.Equal(t, ReasonOutsideAllowedRoots, reports[0].Condition.Reason)

	l.m.mu.Lock()
	before := l.m.monitors[key]
	l.m.mu.Unlock()
	// A new version with the same spec (a resync) keeps the monitor.
	l.putDataset("moving", txt("/etc/shadow"))
	l.m.mu.Lock()
	require.Same(t, before, l.m.monitors[key])
	l.m.mu.Unlock()

	l.putDataset("moving", txt("/data/ok.txt"))
	reports = l.waitReports(2)
	require.Equal(t, count(4), reports[1])
	l.m.mu.Lock()
	require.NotSame(t, before, l.m.monitors[key])
	l.m.mu.Unlock()
}

func TestRestartRestoresStateWithoutReportingAgain(t *testing.T) {
	n := newNode(t)
	first := startLC(t, n, nil)
	first.run()
	first.writeFile("/data/train.txt", "a\nb\nc\n")
	first.putDataset("helmet", txt("/data/train.txt"))
	require.Equal(t, []Report{count(3)}, first.waitReports(1))
	require.Eventually(t, func() bool {
		rec, found := first.savedState("helmet")
		return found && rec.Sent.NumberOfSamples == 3
	}, waitFor, testPeriod)
	first.stop()

	// The restarted LC gets the dataset from its store (Dispatcher.Replay) before Run starts.
	second := startLC(t, n, nil)
	stored, found, err := second.st.GetResource(store.ResourceKey{Kind: Kind, Namespace: testNamespace, Name: "helmet"})
	require.NoError(t, err)
	require.True(t, found)
	second.m.ResourceChanged(t.Context(), stored)
	second.run()

	second.waitPasses("helmet", 3)
	require.Empty(t, second.reporter.Reports(), "a restored count GM already has is not reported again")

	second.appendFile("/data/train.txt", "d\n")
	require.Equal(t, []Report{count(4)}, second.waitReports(1))
}

func TestRestartKeepsAReportedProblemQuiet(t *testing.T) {
	n := newNode(t)
	first := startLC(t, n, nil)
	first.run()
	first.putDataset("missing", txt("/data/missing.txt"))
	require.Equal(t, ReasonIndexNotFound, first.waitReports(1)[0].Condition.Reason)
	require.Eventually(t, func() bool {
		rec, found := first.savedState("missing")
		return found && rec.Sent.Condition != nil
	}, waitFor, testPeriod)
	first.stop()

	second := startLC(t, n, nil)
	second.run()
	second.putDataset("missing", txt("/data/missing.txt"))
	second.waitPasses("missing", 3)
	require.Empty(t, second.reporter.Reports())
}

func TestStateIsSavedOnlyAfterTheReportIsQueued(t *testing.T) {
	l := startLC(t, newNode(t), nil)
	var (
		mu         sync.Mutex
		calls      int
		violations []string
	)
	l.reporter.SetHook(func(_ context.Context, _ channel.Key, content []byte) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		rec, found := l.savedState("helmet")
		if found && strings.Contains(string(content), `"numberOfSamples":`+strconv.Itoa(rec.Sent.NumberOfSamples)+`}`) {
			violations = append(violations, "state already holds the count being reported: "+string(content))
		}
		if calls == 1 {
			return errors.New("outbox full")
		}
		return nil
	})
	l.run()
	l.writeFile("/data/train.txt", "a\nb\n")
	l.putDataset("helmet", txt("/data/train.txt"))

	// The first report fails: nothing is saved and the next pass reports again.
	require.Equal(t, []Report{count(2)}, l.waitReports(1))
	require.Eventually(t, func() bool {
		rec, found := l.savedState("helmet")
		return found && rec.Sent.Reported && rec.Sent.NumberOfSamples == 2 && rec.Counter != nil && rec.Counter.Count == 2
	}, waitFor, testPeriod)

	l.appendFile("/data/train.txt", "c\n")
	require.Equal(t, []Report{count(2), count(3)}, l.waitReports(2))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 3, calls)
	require.Empty(t, violations)
}

func TestDeleteStopsTheMonitorAndForgetsItsState(t *testing.T) {
	l := startLC(t, newNode(t), nil)
	l.run()
	l.writeFile("/data/train.txt", "a\n")
	key := l.putDataset("gone", txt("/data/train.txt"))
	l.waitReports(1)
	require.Eventually(t, func() bool { _, found := l.savedState("gone"); return found }, waitFor, testPeriod)

	l.m.ResourceDeleted(t.Context(), key)
	_, found := l.savedState("gone")
	require.False(t, found)
	l.m.mu.Lock()
	require.Empty(t, l.m.monitors)
	l.m.mu.Unlock()

	passes := l.passCount("gone")
	l.appendFile("/data/train.txt", "b\n")
	// Give a stray monitor many periods to show itself.
	other := l.putDataset("witness", txt("/data/train.txt"))
	l.waitPasses(other.Name, 5)
	require.Equal(t, passes, l.passCount("gone"))
	require.Equal(t, []Report{count(1), count(2)}, l.reports(), "only the witness reports the new count")
	require.Equal(t, "witness", l.reporter.Reports()[1].Key.Name)
}

func TestRunStartsMonitorsAddedBeforeIt(t *testing.T) {
	l := startLC(t, newNode(t), nil)
	l.writeFile("/data/train.txt", "a\n")
	l.putDataset("early", txt("/data/train.txt"))
	l.m.mu.Lock()
	require.Nil(t, l.m.monitors[store.ResourceKey{Kind: Kind, Namespace: testNamespace, Name: "early"}].loop, "nothing runs before Run")
	l.m.mu.Unlock()
	l.run()
	require.Equal(t, []Report{count(1)}, l.waitReports(1))
}

func TestTruncateMessageKeepsRunes(t *testing.T) {
	tests := map[string]struct {
		message string
		want    string
	}{
		"short":          {message: "short", want: "short"},
		"ascii too long": {message: strings.Repeat("a", maxMessageLength+5), want: strings.Repeat("a", maxMessageLength) + "..."},
		"cut inside a rune": {
			message: strings.Repeat("a", maxMessageLength-1) + "é" + "tail",
			want:    strings.Repeat("a", maxMessageLength-1) + "...",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, truncateMessage(tc.message))
		})
	}
}
