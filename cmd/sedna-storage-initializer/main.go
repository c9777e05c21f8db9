// Command sedna-storage-initializer is the init container GM adds to worker pods whose models or
// datasets live at remote URLs. Its arguments are pairs "src dstDir": each src (s3://, http(s)://,
// or a local path or file:// URL, which is symlinked) is fetched into dstDir, keeping its base
// name, and .tar, .tar.gz, .tgz and .zip files are also unpacked there. S3 credentials come from
// S3_ENDPOINT_URL, ACCESS_KEY_ID and SECRET_ACCESS_KEY; HTTP headers for a host from the env var
// "<host>-headers" holding a JSON object, as upstream's initializer.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv)
	stop()
	if err != nil {
		klog.ErrorS(err, "Storage initializer failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
