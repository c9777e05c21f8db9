// Command lcshard runs a shard of the scale fleet's simulated LCs (test/scale, shard.go): it
// reads its configuration and commands as JSON lines on stdin and answers on stdout. The fleet
// starts it; it is no part of Sedna.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/scale"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background().WithName("lcshard"))
	if err := scale.RunShard(ctx, os.Stdin, os.Stdout); err != nil {
		klog.FromContext(ctx).Error(err, "LC shard failed")
		stop()
		os.Exit(1)
	}
}
