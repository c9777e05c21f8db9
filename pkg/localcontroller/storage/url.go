package storage

import (
	"fmt"
	"path"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// SchemeS3 is the only URL scheme the LC handles itself; other schemes (http, obs, ...) are only
// reachable through GM's storage initializer in worker pods.
const SchemeS3 = "s3"

// Location is a parsed storage URL.
type Location struct {
	// Scheme is "s3" or "" for a host path.
	Scheme string
	// Bucket and Key are set for s3. Key is empty for a whole bucket.
	Bucket, Key string
	// Path is the cleaned absolute host path, set when Scheme is "".
	Path string
}

// IsTree reports whether the location names a directory (a host directory or an S3 prefix)
// rather than a single file. Only a trailing "/" makes a tree: S3 cannot tell a prefix from a
// missing object without listing, so the URL has to say which one it means.
func (l Location) IsTree() bool {
	if l.Scheme == SchemeS3 {
		return l.Key == "" || strings.HasSuffix(l.Key, "/")
	}
	return strings.HasSuffix(l.Path, "/")
}

// String returns the URL in its canonical form.
func (l Location) String() string {
	if l.Scheme == SchemeS3 {
		return SchemeS3 + "://" + l.Bucket + "/" + l.Key
	}
	return l.Path
}

// ParseURL parses a storage URL: "s3://bucket/key/path" or an absolute host path "/abs/path".
// It refuses other schemes, relative host paths, empty or invalid buckets and ".." elements;
// the URLs come from user-written resources and must not reach outside the place they name.
func ParseURL(raw string) (Location, error) {
	if raw == "" {
		return Location{}, fmt.Errorf("empty storage URL")
	}
	if strings.ContainsRune(raw, 0) {
		return Location{}, fmt.Errorf("storage URL %q contains a NUL byte", raw)
	}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if !strings.EqualFold(scheme, SchemeS3) {
			return Location{}, fmt.Errorf("storage URL %q: unsupported scheme %q (only s3:// and absolute host paths)", raw, scheme)
		}
		return parseS3(raw, rest)
	}
	// A colon before the first slash is a scheme without "//" ("s3:bucket/x", "file:/x"): refuse it
	// rather than read it as a relative path.
	if i := strings.IndexAny(raw, ":/"); i >= 0 && raw[i] == ':' {
		return Location{}, fmt.Errorf("storage URL %q: unsupported scheme %q (only s3:// and absolute host paths)", raw, raw[:i])
	}
	return parseHostPath(raw)
}

func parseS3(raw, rest string) (Location, error) {
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return Location{}, fmt.Errorf("storage URL %q: empty bucket", raw)
	}
	if err := s3utils.CheckValidBucketName(bucket); err != nil {
		return Location{}, fmt.Errorf("storage URL %q: bucket %q: %w", raw, bucket, err)
	}
	if err := s3utils.CheckValidObjectNamePrefix(key); err != nil {
		return Location{}, fmt.Errorf("storage URL %q: key %q: %w", raw, key, err)
	}
	// S3 keys are opaque strings, but these same keys become file names when a prefix is downloaded
	// and worker libraries join them as paths. Elements that mean something different as a path
	// ("..", ".", "a//b") are refused so both readings agree.
	elements := strings.Split(strings.TrimSuffix(key, "/"), "/")
	if key == "" {
		elements = nil
	}
	for _, element := range elements {
		switch element {
		case "..":
			return Location{}, fmt.Errorf("storage URL %q: key contains a \"..\" element", raw)
		case ".", "":
			return Location{}, fmt.Errorf("storage URL %q: key contains an empty or \".\" element", raw)
		}
	}
	return Location{Scheme: SchemeS3, Bucket: bucket, Key: key}, nil
}

func parseHostPath(raw string) (Location, error) {
	if !strings.HasPrefix(raw, "/") {
		return Location{}, fmt.Errorf("storage URL %q: host paths must be absolute", raw)
	}
	// Checked before cleaning: path.Clean would silently turn "/data/../etc" into "/etc", and ".."
	// after a symlink means something else on disk than it does lexically.
	for _, element := range strings.Split(raw, "/") {
		if element == ".." {
			return Location{}, fmt.Errorf("storage URL %q: host path contains a \"..\" element", raw)
		}
	}
	cleaned := path.Clean(raw)
	if strings.HasSuffix(raw, "/") && cleaned != "/" {
		cleaned += "/"
	}
	return Location{Path: cleaned}, nil
}
