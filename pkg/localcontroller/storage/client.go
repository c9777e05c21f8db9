package storage

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"k8s.io/klog/v2"
)

// Client moves files between host paths (under rootfs) and one S3 endpoint. Build one per
// credentials; it is safe for concurrent use.
type Client struct {
	rootfs string
	// s3 is nil when the client was built without credentials: such a client only serves host paths.
	s3       *minio.Client
	endpoint string
}

// New returns a Client resolving host paths under rootfs (the mount point of the node's "/",
// "/rootfs" in the DaemonSet; "/" when the LC runs directly on the host). With nil creds only host
// paths are allowed and s3:// URLs fail with ErrNoCredentials.
func New(rootfs string, creds *Credentials) (*Client, error) {
	if !filepath.IsAbs(rootfs) {
		return nil, fmt.Errorf("rootfs %q must be an absolute path", rootfs)
	}
	c := &Client{rootfs: filepath.Clean(rootfs)}
	if creds == nil {
		return c, nil
	}
	if creds.Endpoint == "" {
		return nil, fmt.Errorf("S3 credentials without an endpoint")
	}
	s3, err := minio.New(creds.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(creds.AccessKeyID, creds.SecretAccessKey, ""),
		Secure: creds.UseHTTPS,
		// No Region: minio-go asks the server for each bucket's location, which works for AWS
		// buckets outside us-east-1 as well as for single-region servers such as MinIO.
	})
	if err != nil {
		return nil, fmt.Errorf("creating S3 client for endpoint %s: %w", creds.Endpoint, err)
	}
	c.s3 = s3
	c.endpoint = creds.Endpoint
	return c, nil
}

// object is a resolved place to read or write: an S3 key, or a path in the LC's own filesystem
// (host paths already carry the rootfs prefix).
type object struct {
	bucket, key string // S3 when bucket is set
	file        string // local otherwise
	tree        bool
	// name is how messages show the object: the URL or path the caller passed.
	name string
}

func (o object) isS3() bool { return o.bucket != "" }

func (o object) base() string {
	if o.isS3() {
		return path.Base(o.key)
	}
	return filepath.Base(o.file)
}

// child returns the file at rel (slash-separated, already checked by checkRelative) below a tree.
func (o object) child(rel string) object {
	name := o.name
	if !strings.HasSuffix(name, "/") {
		name += "/"
	}
	child := object{bucket: o.bucket, name: name + rel}
	if o.isS3() {
		prefix := o.key
		if prefix != "" && !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		child.key = prefix + rel
	} else {
		child.file = filepath.Join(o.file, filepath.FromSlash(rel))
	}
	return child
}

func (o object) same(other object) bool {
	if o.isS3() != other.isS3() {
		return false
	}
	if o.isS3() {
		return o.bucket == other.bucket && o.key == other.key
	}
	return filepath.Clean(o.file) == filepath.Clean(other.file)
}

// resolve parses a storage URL and places host paths under rootfs.
func (c *Client) resolve(rawURL string) (object, error) {
	loc, err := ParseURL(rawURL)
	if err != nil {
		return object{}, err
	}
	if loc.Scheme == SchemeS3 {
		if c.s3 == nil {
			return object{}, fmt.Errorf("%s: %w: the resource names no credentialName", rawURL, ErrNoCredentials)
		}
		return object{bucket: loc.Bucket, key: loc.Key, tree: loc.IsTree(), name: rawURL}, nil
	}
	// ParseURL refused "..", so the join cannot climb out of rootfs lexically.
	return object{file: filepath.Join(c.rootfs, filepath.FromSlash(loc.Path)), tree: loc.IsTree(), name: rawURL}, nil
}

// localObject is a path in the LC's own filesystem (not under rootfs): the scratch directories
// the dataset monitor and managers download into.
func localObject(localPath string, tree bool) (object, error) {
	if localPath == "" {
		return object{}, fmt.Errorf("empty local path")
	}
	return object{file: filepath.Clean(localPath), tree: tree, name: localPath}, nil
}

// ReadFile returns the content of the file at url, refusing (ErrTooLarge) anything above
// maxBytes so that a wrong dataset URL cannot exhaust the LC's memory.
func (c *Client) ReadFile(ctx context.Context, url string, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("reading %s: maxBytes must be positive, got %d", url, maxBytes)
	}
	src, err := c.resolve(url)
	if err != nil {
		return nil, err
	}
	if src.tree {
		return nil, fmt.Errorf("reading %s: the URL names a directory, not a file", url)
	}
	reader, size, err := c.open(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	defer closeQuietly(reader)
	if size > maxBytes {
		return nil, fmt.Errorf("reading %s: %w: %d bytes, limit %d", url, ErrTooLarge, size, maxBytes)
	}
	// The size was checked up front, but a local file can grow while being read.
	content, err := io.ReadAll(io.LimitReader(reader, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, c.classify(src, err))
	}
	if int64(len(content)) > maxBytes {
		return nil, fmt.Errorf("reading %s: %w: more than %d bytes", url, ErrTooLarge, maxBytes)
	}
	return content, nil
}

// Download copies url into localPath, a path in the LC's own filesystem. A file URL becomes the
// file localPath (or keeps its name inside localPath when that ends in "/"); a tree URL (ending
// in "/") becomes the directory localPath, keeping the paths relative to the tree. Keys that
// would land outside localPath are refused before anything is written.
func (c *Client) Download(ctx context.Context, url, localPath string) error {
	src, err := c.resolve(url)
	if err != nil {
		return err
	}
	dst, err := localObject(localPath, src.tree || strings.HasSuffix(localPath, "/"))
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	if err := c.transfer(ctx, src, dst); err != nil {
		return fmt.Errorf("downloading %s to %s: %w", url, localPath, err)
	}
	return nil
}

// Upload copies localPath, a path in the LC's own filesystem, to url. A localPath ending in "/"
// uploads the whole directory below the url treated as a tree.
func (c *Client) Upload(ctx context.Context, localPath, url string) error {
	src, err := localObject(localPath, strings.HasSuffix(localPath, "/"))
	if err != nil {
		return fmt.Errorf("uploading to %s: %w", url, err)
	}
	dst, err := c.resolve(url)
	if err != nil {
		return err
	}
	if err := c.transfer(ctx, src, dst); err != nil {
		return fmt.Errorf("uploading %s to %s: %w", localPath, url, err)
	}
	return nil
}

// Copy copies between any two storage URLs, host paths and S3 alike. S3 to S3 is a server-side
// copy (both sides use this client's credentials), so model bytes never pass through the node.
// A file copied onto a tree URL keeps its base name, as cp does; a tree is copied below the
// destination treated as a tree.
func (c *Client) Copy(ctx context.Context, srcURL, dstURL string) error {
	src, err := c.resolve(srcURL)
	if err != nil {
		return err
	}
	dst, err := c.resolve(dstURL)
	if err != nil {
		return err
	}
	if err := c.transfer(ctx, src, dst); err != nil {
		return fmt.Errorf("copying %s to %s: %w", srcURL, dstURL, err)
	}
	return nil
}

// Stat returns the size and modification time of the file at url.
func (c *Client) Stat(ctx context.Context, url string) (int64, time.Time, error) {
	src, err := c.resolve(url)
	if err != nil {
		return 0, time.Time{}, err
	}
	if src.tree {
		return 0, time.Time{}, fmt.Errorf("stat %s: the URL names a directory, not a file", url)
	}
	var size int64
	var modTime time.Time
	if src.isS3() {
		size, modTime, err = c.statS3(ctx, src)
	} else {
		size, modTime, err = statLocal(src)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stat %s: %w", url, err)
	}
	return size, modTime, nil
}

// transfer copies src to dst, one file or a whole tree.
func (c *Client) transfer(ctx context.Context, src, dst object) error {
	if !src.tree {
		if dst.tree {
			dst = dst.child(src.base())
		}
		return c.copyFile(ctx, src, dst)
	}
	// Listing (and checking every relative path) before copying anything means a hostile key is
	// refused before a single file has been written.
	var rels []string
	var err error
	if src.isS3() {
		rels, err = c.listS3(ctx, src)
	} else {
		rels, err = listLocal(ctx, src)
	}
	if err != nil {
		return err
	}
	dst.tree = true
	for _, rel := range rels {
		if err := c.copyFile(ctx, src.child(rel), dst.child(rel)); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies one file between any two places.
func (c *Client) copyFile(ctx context.Context, src, dst object) error {
	logger := klog.FromContext(ctx)
	if src.same(dst) {
		// Rewriting a file from itself would truncate it locally, and S3 refuses a copy onto
		// itself; either way there is nothing to do.
		return nil
	}
	if src.isS3() && dst.isS3() {
		if err := c.copyS3(ctx, src, dst); err != nil {
			return err
		}
		logger.V(4).Info("Copied object server-side", "from", src.name, "to", dst.name)
		return nil
	}
	reader, size, err := c.open(ctx, src)
	if err != nil {
		return err
	}
	defer closeQuietly(reader)
	var written int64
	if dst.isS3() {
		written, err = c.putS3(ctx, dst, reader, size)
	} else {
		source := &contextReader{ctx: ctx, reader: reader}
		written, err = writeFileAtomic(dst.file, source)
		if source.err != nil {
			// Blame the side that failed: a broken download is not a full disk.
			err = c.classify(src, source.err)
		}
	}
	if err != nil {
		return err
	}
	// A reader that ends early (a truncated download, a file shrinking under us) must not leave a
	// short model behind looking complete.
	if written != size {
		return fmt.Errorf("copying %s to %s: wrote %d bytes, source has %d", src.name, dst.name, written, size)
	}
	logger.V(4).Info("Copied file", "from", src.name, "to", dst.name, "bytes", written)
	return nil
}

// open returns a reader for the file src and its size.
func (c *Client) open(ctx context.Context, src object) (io.ReadCloser, int64, error) {
	if src.isS3() {
		return c.openS3(ctx, src)
	}
	return openLocal(src)
}

// classify maps an error seen while streaming from src to the package sentinels.
func (c *Client) classify(src object, err error) error {
	if src.isS3() {
		return c.s3Error("reading", src, err)
	}
	return err
}

// checkRelative refuses a path below a tree that would leave the tree once joined: S3 keys are
// arbitrary strings, and a key such as "models/../../etc/cron.d/x" under the prefix "models/"
// must not become a file outside the download directory.
func checkRelative(tree object, rel string) error {
	if rel == "" || strings.HasPrefix(rel, "/") || !filepath.IsLocal(filepath.FromSlash(rel)) {
		return fmt.Errorf("refusing %q below %s: the path would leave the directory", rel, tree.name)
	}
	for _, element := range strings.Split(rel, "/") {
		if element == "" || element == "." || element == ".." {
			return fmt.Errorf("refusing %q below %s: empty, \".\" or \"..\" path element", rel, tree.name)
		}
	}
	return nil
}

func closeQuietly(closer io.Closer) {
	// Only readers are closed this way: a close error after a complete read changes nothing.
	_ = closer.Close()
}

// contextReader stops a local copy when the context ends (S3 readers already watch the context)
// and remembers the source's own failure so it can be told apart from a write failure.
type contextReader struct {
	ctx    context.Context
	reader io.Reader
	err    error
}

func (r *contextReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return 0, err
	}
	n, err := r.reader.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
