package main

import (
	"context"
	"fmt"
	"path"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushed is one image index written to a registry.
type pushed struct {
	Ref    string
	Digest string
}

// push writes every image index of the OCI layout dir to repo/<image>:tag, where <image> is the
// last element of the name the layout stores it under. Credentials come from the docker config
// (~/.docker/config.json, DOCKER_CONFIG), as for `docker push`. An example image keeps the tag
// of its manifests (tags, exampleTags) and the tag it was built with.
func push(ctx context.Context, dir, repo, tag string, tags map[string]string, opts ...remote.Option) ([]pushed, error) {
	if repo == "" {
		return nil, fmt.Errorf("no repository to push to (IMAGE_REPO)")
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the OCI layout %s (run `make images` first): %w", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	var out []pushed
	for _, desc := range im.Manifests {
		stored := desc.Annotations["org.opencontainers.image.ref.name"]
		if stored == "" {
			return nil, fmt.Errorf("OCI layout %s: manifest %s has no org.opencontainers.image.ref.name annotation", dir, desc.Digest)
		}
		ref, err := name.ParseReference(stored)
		if err != nil {
			return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
		}
		imageTag := tag
		for image, t := range tags {
			if path.Base(image) == path.Base(ref.Context().RepositoryStr()) {
				imageTag = t
			}
		}
		dst, err := name.NewTag(reference(path.Base(ref.Context().RepositoryStr()), repo, imageTag))
		if err != nil {
			return nil, err
		}
		idx, err := top.ImageIndex(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading %s from the layout: %w", stored, err)
		}
		if err := remote.WriteIndex(dst, idx, opts...); err != nil {
			return nil, fmt.Errorf("pushing %s: %w", dst, err)
		}
		out = append(out, pushed{Ref: dst.String(), Digest: desc.Digest.String()})
	}
	return out, nil
}
