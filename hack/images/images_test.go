package main

import (
	"archive/tar"
	"context"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The tests build one small image (the storage initializer) for both platforms; `make images`
// builds them all.
const testImage = "kubeedge/sedna-storage-initializer"

var platforms = []string{"linux/amd64", "linux/arm64"}

func buildTest(t *testing.T, out string) []built {
	t.Helper()
	all, err := readTable(filepath.Join("..", "local-up", "images.txt"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := selectEntries(all, []string{testImage})
	if err != nil {
		t.Fatal(err)
	}
	res, err := build(context.Background(), buildOptions{
		Root: filepath.Join("..", ".."), Entries: entries, Platforms: platforms, Tag: "v0.0.0-test",
		Out: out, CABundle: writeCA(t), Epoch: time.Unix(1700000000, 0).UTC(), Log: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func writeCA(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(f, []byte("-----BEGIN CERTIFICATE-----\nnot a real one\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestImagesReproducibleAndReadable builds the image twice into separate directories (so nothing
// but Go's build cache is shared) and checks the digests match, then reads both outputs back with
// go-containerregistry's readers, and pushes to an in-process registry.
func TestImagesReproducibleAndReadable(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles a binary for two platforms")
	}
	out1, out2 := t.TempDir(), t.TempDir()
	first, second := buildTest(t, out1), buildTest(t, out2)
	d1, err := first[0].Index.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d2, err := second[0].Index.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Fatalf("two builds gave different digests: %s and %s", d1, d2)
	}
	ref := testImage + ":v0.0.0-test"
	if first[0].Ref != ref {
		t.Fatalf("image name %q, want %q", first[0].Ref, ref)
	}

	t.Run("layout", func(t *testing.T) {
		p, err := layout.FromPath(filepath.Join(out1, "oci"))
		if err != nil {
			t.Fatal(err)
		}
		top, err := p.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, err := top.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 1 || im.Manifests[0].Annotations[annotationImageName] != "docker.io/"+ref || im.Manifests[0].Digest != d1 {
			t.Fatalf("layout index: %+v, want one index %s named %s", im.Manifests, d1, ref)
		}
		idx, err := top.ImageIndex(d1)
		if err != nil {
			t.Fatal(err)
		}
		checkIndex(t, idx)
	})

	t.Run("tarballs", func(t *testing.T) {
		for _, p := range platforms {
			file := filepath.Join(out1, strings.ReplaceAll(p, "/", "-"), "sedna-storage-initializer.tar")
			tag, err := name.NewTag(ref)
			if err != nil {
				t.Fatal(err)
			}
			img, err := tarball.ImageFromPath(file, &tag)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			checkImage(t, img, p)
			// The tarball holds the same image as the layout.
			want, err := first[0].Images[p].Digest()
			if err != nil {
				t.Fatal(err)
			}
			got, err := img.ConfigName()
			if err != nil {
				t.Fatal(err)
			}
			wantCfg, err := first[0].Images[p].ConfigName()
			if err != nil {
				t.Fatal(err)
			}
			if got != wantCfg {
				t.Errorf("%s: config %s, want %s (image %s)", file, got, wantCfg, want)
			}
		}
	})

	t.Run("push", func(t *testing.T) {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		u, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		repo := u.Host + "/sedna"
		res, err := push(context.Background(), filepath.Join(out1, "oci"), repo, "v9.9.9", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := repo + "/sedna-storage-initializer:v9.9.9"
		if len(res) != 1 || res[0].Ref != want {
			t.Fatalf("pushed %+v, want %s", res, want)
		}
		tag, err := name.NewTag(want)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(tag)
		if err != nil {
			t.Fatal(err)
		}
		got, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if got != d1 {
			t.Fatalf("registry has %s, built %s", got, d1)
		}
		checkIndex(t, idx)
		if _, err := push(context.Background(), filepath.Join(out1, "oci"), "", "v1", nil); err == nil {
			t.Fatal("push without a repository succeeded")
		}
	})
}

func checkIndex(t *testing.T, idx v1.ImageIndex) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(platforms) {
		t.Fatalf("index has %d manifests, want %d", len(im.Manifests), len(platforms))
	}
	for i, desc := range im.Manifests {
		if desc.Platform == nil || desc.Platform.OS+"/"+desc.Platform.Architecture != platforms[i] {
			t.Fatalf("manifest %d: platform %+v, want %s", i, desc.Platform, platforms[i])
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img, platforms[i])
	}
}

// checkImage checks what a node runs: the platform, a non-root user, the binary as entrypoint,
// and that the files (passwd, CA bundle, binary) are in the layers.
func checkImage(t *testing.T, img v1.Image, platform string) {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.OS + "/" + cfg.Architecture; got != platform {
		t.Errorf("config platform %s, want %s", got, platform)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cfg.Config.User)
	}
	if want := "/usr/local/bin/sedna-storage-initializer"; len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != want {
		t.Errorf("entrypoint %q, want [%s]", cfg.Config.Entrypoint, want)
	}
	if !cfg.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %v, want SOURCE_DATE_EPOCH", cfg.Created)
	}
	files := map[string]bool{}
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	for _, f := range tarNames(t, rc) {
		files[f] = true
	}
	for _, f := range []string{"etc/passwd", "etc/group", "etc/ssl/certs/ca-certificates.crt", "usr/local/bin/sedna-storage-initializer", "tmp"} {
		if !files[f] {
			t.Errorf("image has no %s (has %v)", f, files)
		}
	}
}

func tarNames(t *testing.T, r io.Reader) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestTable(t *testing.T) {
	all, err := readTable(filepath.Join("..", "local-up", "images.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// Every image's binary has a main package, so `make images` can build each line.
	for _, e := range all {
		if _, err := packageOf(filepath.Join("..", ".."), e.Binary); err != nil {
			t.Errorf("%s: %v", e.Image, err)
		}
	}
	for _, want := range []string{"kubeedge/sedna-gm", "kubeedge/sedna-lc", "kubeedge/sedna-storage-initializer", "kubeedge/sedna-kb", "kubeedge/sedna-aggregator"} {
		if _, err := selectEntries(all, []string{want}); err != nil {
			t.Error(err)
		}
	}
	if _, err := selectEntries(all, []string{"no-such-image"}); err == nil {
		t.Error("selecting an unknown image succeeded")
	}
	if got := reference("sedna-example/mnist-edge", "registry.example.com/sedna/", "v1"); got != "registry.example.com/sedna/mnist-edge:v1" {
		t.Errorf("reference: %s", got)
	}
	if got := reference("kubeedge/sedna-gm", "", "v0.7.0"); got != "kubeedge/sedna-gm:v0.7.0" {
		t.Errorf("reference: %s", got)
	}
}

// TestManifestImagesAreBuilt checks that every image examples/**/*.yaml and build/**/*.yaml
// reference is one `make images` produces (default IMAGE_TAG and IMAGE_REPO, the Makefile's), with
// that exact name and tag: else applying them pulls an image nobody built.
func TestManifestImagesAreBuilt(t *testing.T) {
	root := filepath.Join("..", "..")
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE_TAG \?= (\S+)$`).FindSubmatch(makefile)
	if m == nil {
		t.Fatal("Makefile: no IMAGE_TAG ?= default")
	}
	defaultTag := string(m[1])
	all, err := readTable(filepath.Join(root, "hack", "local-up", "images.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tags, err := exampleTags(root)
	if err != nil {
		t.Fatal(err)
	}
	produced := map[string]bool{}
	for _, e := range all {
		produced[reference(e.Image, "", tagOf(e.Image, tags, defaultTag))] = true
	}
	referenced := 0
	for _, dir := range []string{"examples", "build"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(file string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(file, ".yaml") {
				return err
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			for _, m := range imageRef.FindAllStringSubmatch(string(data), -1) {
				referenced++
				if !produced[m[1]] {
					t.Errorf("%s: image %s is not one make images produces", file, m[1])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if referenced < 10 {
		t.Fatalf("found only %d image references in examples/ and build/", referenced)
	}
}
