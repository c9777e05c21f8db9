package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// nonRootUID is the user every image runs as (the manifests' runAsUser).
	nonRootUID = 65532
	// binDir is where an image's one binary lives; it is the entrypoint.
	binDir = "/usr/local/bin"
	// annotationImageName names an image in an OCI layout for containerd (`ctr images import`).
	annotationImageName = "io.containerd.image.name"
)

// buildOptions says what to build and where.
type buildOptions struct {
	Root      string   // the checkout
	Entries   []entry  // images to build
	Platforms []string // e.g. linux/amd64
	Repo, Tag string   // names: reference(image, Repo, Tag), the tag Tags' if it has one
	// Tags are the tags of the example images, which keep the tag their manifests use
	// (exampleTags).
	Tags     map[string]string
	Out      string // _output/images
	CABundle string // PEM file copied into the base layer
	// Epoch is every timestamp in the images (tar headers, config and history): builds of the
	// same sources give the same digests.
	Epoch time.Time
	Log   func(format string, args ...any)
}

// built is one image index (all platforms of one image) and its name.
type built struct {
	Ref   string
	Index v1.ImageIndex
	// Images per platform ("linux/amd64"), for the per-platform tarballs.
	Images map[string]v1.Image
}

// build compiles each entry's binary for every platform, assembles the images onto the base layer,
// and writes the OCI layout (Out/oci) and one docker-format tarball per image and platform
// (Out/<os>-<arch>/<image>.tar, the last element of the image name).
func build(ctx context.Context, o buildOptions) ([]built, error) {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	base, err := baseLayer(o.CABundle, o.Epoch)
	if err != nil {
		return nil, err
	}
	binaries := map[string][]string{} // platform -> binary paths, in entry order
	for _, p := range o.Platforms {
		dir := filepath.Join(o.Out, "bin", strings.ReplaceAll(p, "/", "-"))
		if err := compile(ctx, o, p, dir); err != nil {
			return nil, err
		}
		for _, e := range o.Entries {
			binaries[p] = append(binaries[p], filepath.Join(dir, e.Binary))
		}
	}
	var out []built
	for i, e := range o.Entries {
		b := built{Ref: reference(e.Image, o.Repo, tagOf(e.Image, o.Tags, o.Tag)), Images: map[string]v1.Image{}}
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for _, p := range o.Platforms {
			img, err := image(base, binaries[p][i], p, o.Epoch)
			if err != nil {
				return nil, fmt.Errorf("image %s for %s: %w", b.Ref, p, err)
			}
			osName, arch, _ := strings.Cut(p, "/")
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add:        img,
				Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}},
			})
			b.Images[p] = img
		}
		b.Index = idx
		out = append(out, b)
	}
	if err := writeLayout(filepath.Join(o.Out, "oci"), out); err != nil {
		return nil, err
	}
	// The archives are this build's only, like the layout.
	for _, p := range o.Platforms {
		if err := os.RemoveAll(filepath.Join(o.Out, strings.ReplaceAll(p, "/", "-"))); err != nil {
			return nil, err
		}
	}
	for i, b := range out {
		ref, err := name.NewTag(b.Ref)
		if err != nil {
			return nil, fmt.Errorf("image name %s: %w", b.Ref, err)
		}
		for _, p := range o.Platforms {
			file := filepath.Join(o.Out, strings.ReplaceAll(p, "/", "-"), path.Base(o.Entries[i].Image)+".tar")
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return nil, err
			}
			if err := tarball.WriteToFile(file, ref, b.Images[p]); err != nil {
				return nil, fmt.Errorf("writing %s: %w", file, err)
			}
		}
		d, err := b.Index.Digest()
		if err != nil {
			return nil, err
		}
		o.Log("%s %s", d, b.Ref)
	}
	return out, nil
}

// compile builds the entries' binaries for one platform: static (CGO_ENABLED=0), without paths or
// VCS stamps of this machine, without build IDs, so that they are the same on every build.
func compile(ctx context.Context, o buildOptions, platform, dir string) error {
	osName, arch, ok := strings.Cut(platform, "/")
	if !ok {
		return fmt.Errorf("platform %q: want os/arch", platform)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var pkgs []string
	for _, e := range o.Entries {
		pkg, err := packageOf(o.Root, e.Binary)
		if err != nil {
			return err
		}
		// Two images may run the same binary (the federated learning example's aggregator is
		// sedna-aggregator): build it once.
		if !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
	}
	o.Log("compiling %d binaries for %s", len(pkgs), platform)
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", dir + "/"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+osName, "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w", platform, err)
	}
	return nil
}

// baseLayer is the base every image shares, built here: the CA bundle, /etc/passwd and /etc/group
// with root and the non-root user the images run as, its home and a /tmp.
func baseLayer(caBundle string, epoch time.Time) (v1.Layer, error) {
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("reading the CA bundle for the base layer: %w", err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRootUID, nonRootUID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonRootUID)
	files := []tarFile{
		{Name: "etc/", Mode: 0o755, Dir: true},
		{Name: "etc/group", Mode: 0o644, Data: []byte(group)},
		{Name: "etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Name: "etc/ssl/", Mode: 0o755, Dir: true},
		{Name: "etc/ssl/certs/", Mode: 0o755, Dir: true},
		{Name: "etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: ca},
		{Name: "home/", Mode: 0o755, Dir: true},
		{Name: "home/nonroot/", Mode: 0o700, Dir: true, UID: nonRootUID},
		{Name: "root/", Mode: 0o700, Dir: true},
		{Name: "tmp/", Mode: 0o1777, Dir: true},
		{Name: "usr/", Mode: 0o755, Dir: true},
		{Name: "usr/local/", Mode: 0o755, Dir: true},
		{Name: "usr/local/bin/", Mode: 0o755, Dir: true},
	}
	return layer(files, epoch)
}

// image is the base plus one binary, run as the non-root user.
func image(base v1.Layer, binary, platform string, epoch time.Time) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	exe := path.Join(binDir, filepath.Base(binary))
	bin, err := layer([]tarFile{{Name: strings.TrimPrefix(exe, "/"), Mode: 0o755, Data: data}}, epoch)
	if err != nil {
		return nil, err
	}
	osName, arch, _ := strings.Cut(platform, "/")
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: epoch}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch,
		OS:           osName,
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", nonRootUID, nonRootUID),
			Entrypoint: []string{exe},
			WorkingDir: "/home/nonroot",
			Env: []string{
				"PATH=/usr/local/bin:/usr/bin:/bin",
				"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
				"HOME=/home/nonroot",
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "sedna base: CA certificates, passwd (nonroot 65532)"}},
		mutate.Addendum{Layer: bin, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "sedna binary " + exe}},
	)
}

// tarFile is one entry of a layer.
type tarFile struct {
	Name string
	Mode int64
	Dir  bool
	UID  int
	Data []byte
}

// layer makes a gzip-compressed OCI layer of the files, every header stamped with epoch and owned
// by root unless said otherwise.
func layer(files []tarFile, epoch time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{
			Name: f.Name, Mode: f.Mode, ModTime: epoch, AccessTime: epoch, ChangeTime: epoch,
			Uid: f.UID, Gid: f.UID, Format: tar.FormatPAX,
		}
		if f.Dir {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// containerdName is the fully qualified name containerd and the kubelet look an image up by
// ("docker.io/kubeedge/sedna-gm:v0.7.0" for "kubeedge/sedna-gm:v0.7.0").
func containerdName(ref string) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", fmt.Errorf("image name %s: %w", ref, err)
	}
	registry := tag.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	return registry + "/" + tag.RepositoryStr() + ":" + tag.TagStr(), nil
}

// writeLayout writes the images as one OCI image layout, each image an index of its platforms
// annotated with its name.
func writeLayout(dir string, images []built) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating the OCI layout %s: %w", dir, err)
	}
	for _, b := range images {
		full, err := containerdName(b.Ref)
		if err != nil {
			return err
		}
		err = p.AppendIndex(b.Index, layout.WithAnnotations(map[string]string{
			annotationImageName:                 full,
			"org.opencontainers.image.ref.name": b.Ref,
		}))
		if err != nil {
			return fmt.Errorf("writing %s to the OCI layout: %w", b.Ref, err)
		}
	}
	return nil
}
