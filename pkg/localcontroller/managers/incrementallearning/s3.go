package incrementallearning

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// SecretKind is the channel kind of the Secrets GM sends for a credentialName (the job's, its
// Dataset's and its Models').
const SecretKind = "secret"

// isS3 tells s3:// URLs from host paths.
func isS3(url string) bool {
	scheme, _, found := strings.Cut(url, "://")
	return found && strings.EqualFold(scheme, storage.SchemeS3)
}

// s3Clients builds S3 clients from the Secrets GM sends, reusing a client while its Secret's
// version is the same.
type s3Clients struct {
	store  *store.Store
	rootfs string

	mu     sync.Mutex
	cached map[store.ResourceKey]cachedClient
}

type cachedClient struct {
	version uint64
	client  *storage.Client
}

// client returns the client for the Secret namespace/name, which url (used for usedFor) needs.
func (c *s3Clients) client(namespace, name, url, usedFor string) (*storage.Client, error) {
	if name == "" {
		return nil, fmt.Errorf("%s %s is on S3 but %s names no credential Secret (credentialName)", usedFor, url, usedFor)
	}
	key := store.ResourceKey{Kind: SecretKind, Namespace: namespace, Name: name}
	resource, found, err := c.store.GetResource(key)
	if err != nil {
		return nil, fmt.Errorf("reading credential Secret %s/%s from the local store: %w", namespace, name, err)
	}
	if !found {
		return nil, fmt.Errorf("credential Secret %s/%s for %s is not on this node: GM has not sent it (does it exist?)", namespace, name, url)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cached, ok := c.cached[key]; ok && cached.version == resource.Version {
		return cached.client, nil
	}
	creds, err := storage.CredentialsFromSecretObject(resource.Object)
	if err != nil {
		return nil, fmt.Errorf("credential Secret %s/%s: %w", namespace, name, err)
	}
	client, err := storage.New(c.rootfs, &creds)
	if err != nil {
		return nil, fmt.Errorf("credential Secret %s/%s: %w", namespace, name, err)
	}
	if c.cached == nil {
		c.cached = map[store.ResourceKey]cachedClient{}
	}
	c.cached[key] = cachedClient{version: resource.Version, client: client}
	return client, nil
}

// place is where a job reads or writes: a host path, or an S3 URL with the client of its
// credentials.
type place struct {
	url    string
	client *storage.Client // nil for a host path
}

// jobPlace is url (under spec.outputDir) with the job's credentials when it is on S3.
func (j *job) jobPlace(url string) (place, error) {
	if !isS3(url) {
		return place{url: url}, nil
	}
	obj := j.spec.obj
	client, err := j.m.s3.client(obj.Namespace, obj.Spec.CredentialName, url, "the job")
	if err != nil {
		return place{}, err
	}
	return place{url: url, client: client}, nil
}

// writeData replaces the file url (a host path or an S3 object) with content.
func (j *job) writeData(ctx context.Context, url string, content []byte) error {
	where, err := j.jobPlace(url)
	if err != nil {
		return &writeError{path: url, err: err}
	}
	if where.client == nil {
		return j.m.files.writeFile(url, content)
	}
	if err := where.client.PutObject(ctx, url, strings.NewReader(string(content)), int64(len(content))); err != nil {
		return &writeError{path: url, err: err}
	}
	return nil
}

// makeDir creates the directory url; S3 has no directories, a prefix exists once written below.
func (j *job) makeDir(url string) error {
	if isS3(url) {
		return nil
	}
	return j.m.files.mkdirAll(url)
}

// copyModel copies the model src (a file or directory on the host, a file on S3, read with
// srcPlace's client) to dstURL, a host path or S3 URL written with dstPlace's client. A host
// destination is written beneath dstRoot as dstRel.
func (j *job) copyModel(ctx context.Context, src place, dst place, dstRoot *hostfs.Root, dstRel string) error {
	switch {
	case src.client == nil && dst.client == nil:
		return j.m.files.copyInto(src.url, dstRoot, dstRel)
	case src.client != nil && dst.client != nil && src.client == dst.client:
		// Same credentials: a server-side copy, files and trees alike.
		if err := src.client.Copy(ctx, src.url, dst.url); err != nil {
			return &writeError{path: dst.url, err: err}
		}
		return nil
	case src.client != nil && strings.HasSuffix(src.url, "/"):
		return fmt.Errorf("copying the model directory %s to %s needs the same credentials on both sides; only single files are copied otherwise", src.url, dst.url)
	}
	var reader io.ReadCloser
	var size int64
	if src.client != nil {
		var err error
		if reader, size, err = src.client.OpenObject(ctx, src.url); err != nil {
			return err
		}
	} else {
		file, err := j.m.files.resolver.Open(src.url)
		if err != nil {
			return err
		}
		info, err := file.Stat()
		if err != nil || !info.Mode().IsRegular() {
			_ = file.Close() // read only
			return fmt.Errorf("%s is not a regular file: only single model files are copied to S3", src.url)
		}
		reader, size = file, info.Size()
	}
	defer func() { _ = reader.Close() }() // read only
	if dst.client != nil {
		if err := dst.client.PutObject(ctx, dst.url, reader, size); err != nil {
			return &writeError{path: dst.url, err: err}
		}
		return nil
	}
	var readErr error
	err := writeAtomic(dstRoot, dstRel, func(w io.Writer) error {
		written, err := io.Copy(w, readerOnly{reader, &readErr})
		if err == nil && written != size {
			readErr = fmt.Errorf("%s ended after %d of %d bytes", src.url, written, size)
			return readErr
		}
		return err
	})
	if readErr != nil {
		return fmt.Errorf("reading %s: %w", src.url, readErr)
	}
	if err != nil {
		return &writeError{path: dst.url, err: err}
	}
	return nil
}

// modelPlace is a Model's URL with the Model's credentials, or the job's when it names none.
func (j *job) modelPlace(name, url string) (place, error) {
	if !isS3(url) {
		return place{url: url}, nil
	}
	obj := j.spec.obj
	secret := obj.Spec.CredentialName
	if model, ok := j.m.models.Lookup(obj.Namespace, name); ok && model.Spec.CredentialName != "" {
		secret = model.Spec.CredentialName
	}
	client, err := j.m.s3.client(obj.Namespace, secret, url, "model "+name)
	if err != nil {
		return place{}, err
	}
	return place{url: url, client: client}, nil
}

// baseName is the last element of a model URL, for its name in the hot-update directory.
func baseName(url string) string {
	if isS3(url) {
		_, rest, _ := strings.Cut(url, "://")
		return path.Base(strings.TrimSuffix(rest, "/"))
	}
	return path.Base(strings.TrimSuffix(url, "/"))
}
