package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// crashChildEnv, when set to a store path, turns the test binary into the writer of
// TestCrashKeepsCommittedWrites instead of running tests.
const crashChildEnv = "SEDNA_STORE_CRASH_CHILD"

// crashModeEnv set to "metrics" makes the child write coalesced worker metrics and worker
// events instead (TestCrashKeepsCoalescedOutboxConsistent).
const crashModeEnv = "SEDNA_STORE_CRASH_MODE"

const (
	crashNamespace  = "crash"
	crashStateNS    = "crashstate"
	crashResources  = 17 // resource names cycle so versions of one resource get replaced
	crashStateKeys  = 13
	crashAckEvery   = 50 // the child acks at every multiple of this seq...
	crashAckLag     = 25 // ...up to this many entries behind, so acks land mid-burst too
	crashChildLimit = 100000
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		if os.Getenv(crashModeEnv) == "metrics" {
			os.Exit(runMetricsCrashChild(path))
		}
		os.Exit(runCrashChild(path))
	}
	os.Exit(m.Run())
}

// crashPayload is the content of outbox entry seq; verifying it proves the entry is intact.
func crashPayload(seq uint64) []byte {
	fill := make([]byte, 64+seq%200)
	for i := range fill {
		fill[i] = 'a' + byte((seq*31+uint64(i)*7)%26)
	}
	return fmt.Appendf(nil, `{"seq":%d,"fill":%q}`, seq, fill)
}

func crashResourceKey(seq uint64) ResourceKey {
	return ResourceKey{Kind: "dataset", Namespace: crashNamespace, Name: fmt.Sprintf("r-%d", seq%crashResources)}
}

func crashObject(key ResourceKey, version uint64) []byte {
	return fmt.Appendf(nil, `{"metadata":{"namespace":%q,"name":%q},"version":%d,"spec":{"url":"/data/%d/index.txt"}}`,
		key.Namespace, key.Name, version, version*version)
}

func crashStateKey(seq uint64) string { return fmt.Sprintf("k-%d", seq%crashStateKeys) }

func crashState(key string, seq uint64) []byte {
	return fmt.Appendf(nil, `{"key":%q,"seq":%d,"numberOfSamples":%d}`, key, seq, seq*3+1)
}

// runCrashChild writes until it is killed. Each line it prints reports a call that has
// returned, i.e. a write the store claims is committed:
//
//	E <seq>            Enqueue(crashPayload(seq)) returned seq
//	R <name> <version> PutResource(crashObject) returned changed=true
//	S <key> <seq>      PutState(crashState) returned
//	A <upTo>           Ack(upTo) returned
func runCrashChild(path string) int {
	s, err := Open(path, Options{Timeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
		return 3
	}
	last, err := s.LastSeq()
	if err != nil {
		return fail("%v", err)
	}
	// A write to stdout fails (or SIGPIPE ends the process) once the parent is gone, which is
	// what stops a child whose parent died before killing it.
	emit := func(format string, args ...any) bool {
		_, err := fmt.Fprintf(os.Stdout, format+"\n", args...)
		return err == nil
	}
	for i := 0; i < crashChildLimit; i++ {
		want := last + 1
		seq, err := s.Enqueue(crashPayload(want))
		if err != nil {
			return fail("enqueue: %v", err)
		}
		if seq != want {
			return fail("enqueue returned seq %d, want %d", seq, want)
		}
		last = seq
		if !emit("E %d", seq) {
			return 0
		}

		key := crashResourceKey(seq)
		changed, err := s.PutResource(Resource{Key: key, Version: seq, Object: crashObject(key, seq)})
		if err != nil {
			return fail("put resource: %v", err)
		}
		if !changed {
			return fail("put of %s at new version %d changed nothing", key, seq)
		}
		if !emit("R %s %d", key.Name, seq) {
			return 0
		}

		stateKey := crashStateKey(seq)
		if err := s.PutState(crashStateNS, stateKey, crashState(stateKey, seq)); err != nil {
			return fail("put state: %v", err)
		}
		if !emit("S %s %d", stateKey, seq) {
			return 0
		}

		if seq%crashAckEvery == 0 && seq > crashAckLag {
			if _, err := s.Ack(seq - crashAckLag); err != nil {
				return fail("ack: %v", err)
			}
			if !emit("A %d", seq-crashAckLag) {
				return 0
			}
		}
	}
	if err := s.Close(); err != nil {
		return fail("close: %v", err)
	}
	return 0
}

// crashReports accumulates what the children reported as committed, across runs.
type crashReports struct {
	seqs      []uint64
	maxSeq    uint64
	ackFloor  uint64
	resources map[string]uint64 // name → last reported version
	states    map[string]uint64 // key → last reported seq
}

func (r *crashReports) apply(t *testing.T, line string) {
	t.Helper()
	fields := strings.Fields(line)
	require.NotEmpty(t, fields, "empty line from child")
	number := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "line %q", line)
		return n
	}
	switch {
	case fields[0] == "E" && len(fields) == 2:
		seq := number(fields[1])
		r.seqs = append(r.seqs, seq)
		r.maxSeq = max(r.maxSeq, seq)
	case fields[0] == "R" && len(fields) == 3:
		r.resources[fields[1]] = number(fields[2])
	case fields[0] == "S" && len(fields) == 3:
		r.states[fields[1]] = number(fields[2])
	case fields[0] == "A" && len(fields) == 2:
		r.ackFloor = max(r.ackFloor, number(fields[1]))
	default:
		t.Fatalf("malformed line from child: %q", line)
	}
}

// runCrashChildUntilKilled starts the writer on path, SIGKILLs it after it reported killAfter
// writes, and returns every complete line it printed, including those still in the pipe.
func runCrashChildUntilKilled(t *testing.T, path string, killAfter int, env ...string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), crashChildEnv+"="+path), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	// A child that hangs must not hang the test.
	watchdog := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer watchdog.Stop()

	var lines []string
	reader := bufio.NewReader(stdout)
	killed := false
	for {
		line, err := reader.ReadString('\n')
		if err != nil {
			// A partial last line is a print the kill interrupted; its write returned before
			// the line was complete, so it reports nothing.
			if !errors.Is(err, io.EOF) {
				require.NoError(t, err)
			}
			break
		}
		lines = append(lines, strings.TrimSuffix(line, "\n"))
		if !killed && len(lines) >= killAfter {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			killed = true
		}
	}
	waitErr := cmd.Wait()
	require.True(t, killed, "child stopped after %d lines before it was killed: %v\nstderr:\n%s", len(lines), waitErr, stderr.String())
	var exitErr *exec.ExitError
	require.ErrorAs(t, waitErr, &exitErr, "stderr:\n%s", stderr.String())
	status, ok := exitErr.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, status.Signaled() && status.Signal() == syscall.SIGKILL,
		"child was not ended by SIGKILL (%v); stderr:\n%s", waitErr, stderr.String())
	return lines
}

// TestCrashKeepsCommittedWrites kills a writer process with SIGKILL in the middle of a burst,
// several times on the same file, and checks after each kill that everything the writer saw
// committed is there, intact, and that the outbox continues without gaps or reused numbers.
func TestCrashKeepsCommittedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary; skipped in -short mode")
	}
	path := filepath.Join(t.TempDir(), "lc.db")
	reports := &crashReports{resources: map[string]uint64{}, states: map[string]uint64{}}

	for run, killAfter := range []int{150, 420, 777} {
		t.Logf("run %d: kill after %d reported writes", run, killAfter)
		for _, line := range runCrashChildUntilKilled(t, path, killAfter) {
			reports.apply(t, line)
		}
		verifyAfterCrash(t, path, reports)
	}
}

func verifyAfterCrash(t *testing.T, path string, reports *crashReports) {
	t.Helper()
	verifyUsageAfterCrash(t, path)
	s, err := Open(path, Options{Timeout: 5 * time.Second})
	require.NoError(t, err, "reopening after SIGKILL")
	defer func() { require.NoError(t, s.Close()) }()

	lastSeq, err := s.LastSeq()
	require.NoError(t, err)
	// At most one write per kind can have committed without being reported (the kill landed
	// between the call returning and the print).
	require.GreaterOrEqual(t, lastSeq, reports.maxSeq)
	require.LessOrEqual(t, lastSeq, reports.maxSeq+1)

	pending, err := s.Pending(0, 0)
	require.NoError(t, err)
	require.NotEmpty(t, pending)
	first := pending[0].Seq
	t.Logf("after kill: %d reported seqs (max %d), last seq %d, outbox %d..%d, child acked up to %d, %d resources, %d state records",
		len(reports.seqs), reports.maxSeq, lastSeq, first, pending[len(pending)-1].Seq, reports.ackFloor, len(reports.resources), len(reports.states))
	for i, entry := range pending {
		require.Equal(t, first+uint64(i), entry.Seq, "outbox has a gap")
		require.Equal(t, crashPayload(entry.Seq), entry.Payload, "outbox entry %d damaged", entry.Seq)
	}
	require.Equal(t, lastSeq, pending[len(pending)-1].Seq, "the last numbered entry is missing")
	length, err := s.OutboxLen()
	require.NoError(t, err)
	require.Equal(t, len(pending), length, "pending count disagrees with the entries")

	// Acks: what was removed is what the child acked, plus at most its one unreported ack.
	ackedUpTo := first - 1
	nextAck := uint64(0)
	if point := lastSeq - lastSeq%crashAckEvery; point > crashAckLag {
		nextAck = point - crashAckLag
	}
	require.True(t, ackedUpTo == reports.ackFloor || (ackedUpTo == nextAck && nextAck > reports.ackFloor),
		"entries up to %d are gone; the child reported acks up to %d (next possible ack %d)", ackedUpTo, reports.ackFloor, nextAck)
	for _, seq := range reports.seqs {
		if seq > ackedUpTo {
			require.GreaterOrEqual(t, seq, first, "reported seq %d is missing", seq)
		}
	}

	for name, reported := range reports.resources {
		key := ResourceKey{Kind: "dataset", Namespace: crashNamespace, Name: name}
		got, found, err := s.GetResource(key)
		require.NoError(t, err)
		require.True(t, found, "resource %s reported at version %d is missing", key, reported)
		require.GreaterOrEqual(t, got.Version, reported, "resource %s went back", key)
		require.LessOrEqual(t, got.Version, lastSeq)
		require.Equal(t, crashObject(key, got.Version), got.Object, "resource %s damaged", key)
	}
	all, err := s.ListResources("dataset")
	require.NoError(t, err)
	for _, r := range all {
		require.Equal(t, crashObject(r.Key, r.Version), r.Object, "resource %s damaged", r.Key)
	}

	for key, reported := range reports.states {
		value, found, err := s.GetState(crashStateNS, key)
		require.NoError(t, err)
		require.True(t, found, "state %s reported at seq %d is missing", key, reported)
		var stored struct {
			Seq uint64 `json:"seq"`
		}
		require.NoError(t, json.Unmarshal(value, &stored), "state %s: %q", key, value)
		require.GreaterOrEqual(t, stored.Seq, reported, "state %s went back", key)
		require.Equal(t, crashState(key, stored.Seq), value, "state %s damaged", key)
	}

	// The store keeps numbering after the crash: the next entry follows the highest number
	// ever handed out, seen or not. Its payload follows the child's scheme so the next run's
	// checks cover it too.
	next, err := s.Enqueue(crashPayload(lastSeq + 1))
	require.NoError(t, err)
	require.Equal(t, lastSeq+1, next)
	require.Greater(t, next, reports.maxSeq)
	reports.seqs = append(reports.seqs, next)
	reports.maxSeq = next
}

// verifyUsageAfterCrash checks the file as the killed process left it, before Open could repair
// anything: the usage and stream index written with the entries add up to the entries.
func verifyUsageAfterCrash(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	storedUsageMatchesEntries(t, db)
}

const (
	crashStreams    = 3
	crashEventEvery = 7
	// crashMetricsBudget is small enough that the child runs into the worker shares, so
	// refusals happen around the kills too.
	crashMetricsBudget = MinOutboxBytes
)

func crashStream(i uint64) string { return fmt.Sprintf("worker-%d", i%crashStreams) }

// runMetricsCrashChild writes coalesced metrics on a few streams, with a worker event now and
// then, until it is killed. Payloads are crashPayload(seq) padded to a few kilobytes. Lines:
//
//	M <stream> <seq>   EnqueueWith(metrics of stream) returned seq
//	V <seq>            EnqueueWith(worker event) returned seq
//	F                  a worker event was refused as the outbox was full
func runMetricsCrashChild(path string) int {
	s, err := Open(path, Options{Timeout: 10 * time.Second, MaxOutboxBytes: crashMetricsBudget})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
		return 3
	}
	emit := func(format string, args ...any) bool {
		_, err := fmt.Fprintf(os.Stdout, format+"\n", args...)
		return err == nil
	}
	for i := uint64(0); i < crashChildLimit; i++ {
		last, err := s.LastSeq()
		if err != nil {
			return fail("%v", err)
		}
		want := last + 1
		if i%crashEventEvery == 0 {
			seq, err := s.EnqueueWith(crashMetricsPayload(want), EnqueueOptions{Class: ClassWorkerEvent})
			switch {
			case errors.Is(err, ErrOutboxFull):
				if !emit("F") {
					return 0
				}
			case err != nil:
				return fail("enqueue event: %v", err)
			case seq != want:
				return fail("event got seq %d, want %d", seq, want)
			default:
				if !emit("V %d", seq) {
					return 0
				}
			}
			continue
		}
		stream := crashStream(i)
		seq, err := s.EnqueueWith(crashMetricsPayload(want), EnqueueOptions{Class: ClassWorkerMetrics, Stream: stream})
		if err != nil {
			return fail("enqueue metrics: %v", err)
		}
		if seq != want {
			return fail("metrics got seq %d, want %d", seq, want)
		}
		if !emit("M %s %d", stream, seq) {
			return 0
		}
	}
	return 0
}

func crashMetricsPayload(seq uint64) []byte {
	return append(crashPayload(seq), bytes.Repeat([]byte(" "), 4000)...)
}

// TestCrashKeepsCoalescedOutboxConsistent kills a writer of coalesced metrics and events in the
// middle of a burst, several times, and checks after each kill that the usage and stream index
// in the file add up to the entries, that each stream holds exactly its newest report, and that
// every event the writer saw accepted is there in order.
func TestCrashKeepsCoalescedOutboxConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary; skipped in -short mode")
	}
	path := filepath.Join(t.TempDir(), "lc.db")
	newest := map[string]uint64{}
	var events []uint64
	refused := 0
	for run, killAfter := range []int{120, 300, 500} {
		t.Logf("run %d: kill after %d reported writes", run, killAfter)
		var maxSeq uint64
		for _, line := range runCrashChildUntilKilled(t, path, killAfter, crashModeEnv+"=metrics") {
			fields := strings.Fields(line)
			switch {
			case len(fields) == 3 && fields[0] == "M":
				seq, err := strconv.ParseUint(fields[2], 10, 64)
				require.NoError(t, err)
				newest[fields[1]] = seq
				maxSeq = max(maxSeq, seq)
			case len(fields) == 2 && fields[0] == "V":
				seq, err := strconv.ParseUint(fields[1], 10, 64)
				require.NoError(t, err)
				events = append(events, seq)
				maxSeq = max(maxSeq, seq)
			case len(fields) == 1 && fields[0] == "F":
				refused++
			default:
				t.Fatalf("malformed line from child: %q", line)
			}
		}
		verifyUsageAfterCrash(t, path)

		s, err := Open(path, Options{MaxOutboxBytes: crashMetricsBudget})
		require.NoError(t, err)
		lastSeq, err := s.LastSeq()
		require.NoError(t, err)
		require.LessOrEqual(t, lastSeq, maxSeq+1, "more than one unreported write")
		pending, err := s.Pending(0, 0)
		require.NoError(t, err)
		perStream := map[string][]uint64{}
		var gotEvents []uint64
		for _, e := range pending {
			require.Equal(t, crashMetricsPayload(e.Seq), e.Payload, "entry %d damaged", e.Seq)
			switch e.Class {
			case ClassWorkerMetrics:
				perStream[e.Stream] = append(perStream[e.Stream], e.Seq)
			case ClassWorkerEvent:
				gotEvents = append(gotEvents, e.Seq)
			default:
				t.Fatalf("entry %d has class %s", e.Seq, e.Class)
			}
		}
		for stream, seq := range newest {
			got := perStream[stream]
			require.Len(t, got, 1, "stream %s holds %v", stream, got)
			// The newest reported, or one the kill kept from being reported.
			require.True(t, got[0] == seq || (got[0] == lastSeq && lastSeq == maxSeq+1), "stream %s holds %d, newest reported %d", stream, got[0], seq)
		}
		// Every accepted event is there, in order, plus at most one unreported at the end.
		require.GreaterOrEqual(t, len(gotEvents), len(events))
		require.Equal(t, events, gotEvents[:len(events)])
		if len(gotEvents) > len(events) {
			require.Equal(t, []uint64{lastSeq}, gotEvents[len(events):])
			events = gotEvents
		}
		require.NoError(t, s.Close())
	}
	t.Logf("%d events refused with the outbox full", refused)
	require.Positive(t, refused, "the child never ran into the worker share")
}
