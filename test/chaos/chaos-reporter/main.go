// Command chaos-reporter is the fault campaign's test worker (test/chaos), run by local Sedna as
// the edge worker of a joint inference service of its own (image sedna-test/chaos-reporter): it
// sends its LC's worker API upstream-shaped reports, each carrying a unique ID in ownerInfo
// ("reportId"), and records what the LC answered to each, so the campaign can check that every
// report an LC accepted reaches GM exactly once.
//
// Its reports have status "completed": events, which the LC queues one by one (never coalesced
// like counters), so every accepted report is a record of its own in the LC's store, and a full
// store refuses them.
//
// Each report is sent once (no retry: a retry would carry the same ID, and an attempt whose
// answer was lost could then arrive twice without any fault of Sedna's). Its outcome is one line
// "<id> <outcome>" appended to chaos-reports.log in --dir (the campaign mounts an emptyDir there,
// which it reads from the node's side), written after the answer: ok (the LC answered 200 with outcome OK: it queued
// the report durably), enospc (refused, the store's file system was full), refused-<code> (any
// other answer), error (no answer: the report may or may not have been queued). Once the file
// chaos-reports.stop exists beside it, the reporter writes "stopped" and sends nothing more.
//
// With --idle it only waits for SIGTERM (the service's cloud worker).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// The files in the working directory the campaign reads and writes.
const (
	LogFile  = "chaos-reports.log"
	StopFile = "chaos-reports.stop"
)

func main() {
	klog.InitFlags(nil)
	idle := flag.Bool("idle", false, "send nothing; wait for SIGTERM")
	dir := flag.String("dir", ".", "directory of chaos-reports.log and chaos-reports.stop")
	minGap := flag.Duration("min-interval", 100*time.Millisecond, "shortest pause between two reports")
	maxGap := flag.Duration("max-interval", 300*time.Millisecond, "longest pause between two reports")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *idle {
		<-ctx.Done()
		return
	}
	if err := os.Chdir(*dir); err != nil {
		klog.FromContext(ctx).Error(err, "chaos-reporter failed")
		os.Exit(1)
	}
	if err := run(ctx, env.FromOS(), *minGap, *maxGap); err != nil {
		klog.FromContext(ctx).Error(err, "chaos-reporter failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, vars *env.Context, minGap, maxGap time.Duration) error {
	if maxGap < minGap || minGap <= 0 {
		return fmt.Errorf("--min-interval %s and --max-interval %s: want 0 < min ≤ max", minGap, maxGap)
	}
	worker := vars.WorkerName()
	if worker == "" {
		return errors.New("WORKER_NAME is not set")
	}
	owner := vars.ServiceName()
	if owner == "" {
		owner = vars.JobName()
	}
	client, err := lc.New(lc.Options{Server: vars.LCServerURL(), Worker: worker, Attempts: 1,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		return err
	}
	out, err := os.OpenFile(LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening %s: %w", LogFile, err)
	}
	defer func() { _ = out.Close() }() // every line was written with its own write
	logger := klog.FromContext(ctx)
	logger.Info("Sending reports with IDs", "endpoint", client.Endpoint(), "owner", owner, "log", LogFile)
	// Unique across restarts of this pod's process and across pods: the worker's name and the
	// start time.
	prefix := fmt.Sprintf("%s.%d", worker, time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	for n := 1; ; n++ {
		if _, err := os.Stat(StopFile); err == nil {
			_, err := fmt.Fprintln(out, "stopped")
			return err
		}
		id := fmt.Sprintf("%s.%d", prefix, n)
		outcome := send(ctx, client, vars, worker, owner, id)
		if ctx.Err() != nil {
			return nil
		}
		if _, err := fmt.Fprintf(out, "%s %s\n", id, outcome); err != nil {
			return fmt.Errorf("recording report %s: %w", id, err)
		}
		gap := minGap + time.Duration(rng.Int64N(int64(maxGap-minGap)+1))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(gap):
		}
	}
}

// send posts one report and names its outcome.
func send(ctx context.Context, client *lc.Client, vars *env.Context, worker, owner, id string) string {
	err := client.Report(ctx, lc.Message{
		Name: worker, Namespace: vars.Namespace(), OwnerName: owner, OwnerKind: lc.OwnerKindJointInference,
		Kind: lc.KindInference, Status: "completed", Results: []any{},
		OwnerInfo: map[string]string{"reportId": id},
	})
	var status *lc.StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &status) && strings.Contains(status.Message, "no space left on device"):
		return "enospc"
	case errors.As(err, &status):
		return fmt.Sprintf("refused-%d", status.StatusCode)
	default:
		return "error"
	}
}
