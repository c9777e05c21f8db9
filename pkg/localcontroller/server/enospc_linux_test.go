package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/gmclient"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

// lcReporter queues reports as the LC's reporter does (gmclient.EnqueueReportAs).
type lcReporter struct{ st *store.Store }

func (r lcReporter) Report(ctx context.Context, key channel.Key, content []byte) error {
	return r.ReportAs(ctx, key, content, store.EnqueueOptions{})
}

func (r lcReporter) ReportAs(_ context.Context, key channel.Key, content []byte, opts store.EnqueueOptions) error {
	_, err := gmclient.EnqueueReportAs(r.st, key, content, opts)
	return err
}

// TestFullDiskRefusesReportsAndKeepsTheAccepted: on a store whose file system is full, the
// worker API refuses a report with status 503 naming ENOSPC (in upstream's shape: HTTP 200, the
// outcome in the body, which the Go library reads), keeps every report it accepted before, and
// takes reports again once space is back. Root only (a tmpfs).
func TestFullDiskRefusesReportsAndKeepsTheAccepted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) }) // test scratch
	st, err := store.Open(filepath.Join(dir, "lc.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	_, err = st.PutResource(store.Resource{Key: store.ResourceKey{Kind: "jointinferenceservice", Namespace: "ns", Name: "ji"}, Version: 1,
		Object: publishedJob(t, jiToken, workerauth.Worker{Pod: "ji-edge-0-abcde", Worker: "edge-0", IP: workerIP, Kind: "edge"})})
	require.NoError(t, err)
	forwarder, err := managers.NewForwarder(managers.KindJointInferenceService, lcReporter{st: st})
	require.NoError(t, err)
	dispatcher, err := managers.NewDispatcher(forwarder)
	require.NoError(t, err)
	f := &fixture{st: st, server: New(Options{}, st, dispatcher)}

	// Event reports (a failed inference each) are never coalesced: every one takes space.
	report := func(i int) string {
		return fmt.Sprintf(`{"name":"edge-0","namespace":"ns","ownerName":"ji","ownerKind":"jointinferenceservice","kind":"inference","status":"failed","results":[],`+
			`"ownerInfo":{"report":%d,"pad":%q}}`, i, strings.Repeat("x", 4096))
	}
	accepted := 0
	var refused response
	for i := range 10000 {
		result, answer := f.do(t, http.MethodPost, "/sedna/workers/edge-0/info", report(i))
		require.Equal(t, http.StatusOK, result.StatusCode, "upstream's shape: the outcome is in the body")
		if answer.Status != http.StatusOK {
			refused = answer
			break
		}
		accepted++
	}
	require.NotZero(t, refused.Status, "a 1 MiB disk took 10000 reports of 4 KiB")
	require.Equal(t, http.StatusServiceUnavailable, refused.Status, refused.Message)
	require.Contains(t, refused.Message, "no space left on device", "the refusal names the cause")
	require.NotZero(t, accepted)
	t.Logf("full after %d reports: %d %s", accepted, refused.Status, refused.Message)

	pending, err := st.Pending(0, accepted+10)
	require.NoError(t, err)
	require.Len(t, pending, accepted, "every report answered OK is queued, and no refused one")
	for i, e := range pending {
		require.Contains(t, string(e.Payload), fmt.Sprintf(`"report":%d}`, i))
	}

	require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=16m"), "space comes back")
	_, answer := f.do(t, http.MethodPost, "/sedna/workers/edge-0/info", report(accepted))
	require.Equal(t, http.StatusOK, answer.Status, answer.Message)
	pending, err = st.Pending(0, accepted+10)
	require.NoError(t, err)
	require.Len(t, pending, accepted+1)
}
