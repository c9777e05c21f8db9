// Command images builds Sedna's container images without a container runtime, and pushes them.
//
//	go run ./hack/images build [--only sedna-gm,sedna-lc] [--platforms linux/amd64,linux/arm64]
//	go run ./hack/images push --repo registry.example.com/sedna --tag v0.7.0
//
// `build` makes one image per line of hack/local-up/images.txt (the names manifests and examples
// use): a base built here (CA certificates, /etc/passwd with the non-root user 65532, nothing
// pulled) plus the line's binary, compiled static with CGO_ENABLED=0 for each platform, as its
// entrypoint. Builds are reproducible: every timestamp is SOURCE_DATE_EPOCH (default 0) and the
// binaries carry no paths, VCS stamps or build IDs of this machine, so two builds of the same
// sources give the same digests. It writes an OCI image layout with one multi-platform index per
// image (_output/images/oci) and, per platform, docker-format tarballs that `docker load` and
// `ctr images import` accept (_output/images/linux-amd64/<image>.tar, e.g. sedna-gm.tar). `push`
// copies the layout's indexes to a registry with the same library.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: images build|push [flags]")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	root := fs.String("root", ".", "the checkout")
	table := fs.String("table", "hack/local-up/images.txt", "image table: image name and binary per line")
	out := fs.String("out", "_output/images", "output directory")
	repo := fs.String("repo", "", "repository prefix (default: the table's names; required for push)")
	tag := fs.String("tag", "v0.7.0", "image tag")
	only := fs.String("only", "", "comma-separated images or binaries to build (default: all)")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms")
	caBundle := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates for the base")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "images: "+format+"\n", a...) }
	switch args[0] {
	case "build":
		epoch, err := sourceDateEpoch()
		if err != nil {
			return err
		}
		all, err := readTable(*table)
		if err != nil {
			return err
		}
		entries, err := selectEntries(all, splitList(*only))
		if err != nil {
			return err
		}
		tags, err := exampleTags(*root)
		if err != nil {
			return err
		}
		_, err = build(ctx, buildOptions{
			Root: *root, Entries: entries, Platforms: splitList(*platforms), Repo: *repo, Tag: *tag, Tags: tags,
			Out: *out, CABundle: *caBundle, Epoch: epoch, Log: logf,
		})
		return err
	case "push":
		tags, err := exampleTags(*root)
		if err != nil {
			return err
		}
		res, err := push(ctx, *out+"/oci", *repo, *tag, tags)
		for _, p := range res {
			logf("pushed %s@%s", p.Ref, p.Digest)
		}
		return err
	default:
		return fmt.Errorf("unknown command %q: build or push", args[0])
	}
}

// sourceDateEpoch is SOURCE_DATE_EPOCH (seconds), the convention for reproducible builds; 0 when unset.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
