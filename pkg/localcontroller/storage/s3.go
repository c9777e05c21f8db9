package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

func (c *Client) openS3(ctx context.Context, src object) (io.ReadCloser, int64, error) {
	reader, err := c.s3.GetObject(ctx, src.bucket, src.key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, c.s3Error("getting", src, err)
	}
	// GetObject is lazy; Stat sends the request, so a missing key or bad credentials surface here
	// instead of on the first Read, before a destination file is created.
	info, err := reader.Stat()
	if err != nil {
		closeQuietly(reader)
		return nil, 0, c.s3Error("getting", src, err)
	}
	return reader, info.Size, nil
}

func (c *Client) statS3(ctx context.Context, src object) (int64, time.Time, error) {
	info, err := c.s3.StatObject(ctx, src.bucket, src.key, minio.StatObjectOptions{})
	if err != nil {
		return 0, time.Time{}, c.s3Error("stat", src, err)
	}
	return info.Size, info.LastModified, nil
}

func (c *Client) putS3(ctx context.Context, dst object, reader io.Reader, size int64) (int64, error) {
	info, err := c.s3.PutObject(ctx, dst.bucket, dst.key, reader, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return 0, c.s3Error("putting", dst, err)
	}
	return info.Size, nil
}

// copyS3 copies server-side. ComposeObject rather than CopyObject because a single CopyObject is
// limited to 5 GiB, and large models exceed that; ComposeObject switches to a multipart copy.
func (c *Client) copyS3(ctx context.Context, src, dst object) error {
	_, err := c.s3.ComposeObject(ctx,
		minio.CopyDestOptions{Bucket: dst.bucket, Object: dst.key},
		minio.CopySrcOptions{Bucket: src.bucket, Object: src.key},
	)
	if err != nil {
		return c.s3Error("copying to "+dst.name+" from", src, err)
	}
	return nil
}

// listS3 returns the keys below the prefix src, relative to it and sorted. Keys ending in "/" are
// directory markers some tools create and hold no file. An empty prefix is ErrNotFound: S3 has no
// empty directories, so nothing below a prefix means the model or dataset is not there.
func (c *Client) listS3(ctx context.Context, src object) ([]string, error) {
	prefix := src.key
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	// A cancelled listing must stop minio-go's producer goroutine; cancelling our own child
	// context on every return path does that.
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var rels []string
	for info := range c.s3.ListObjects(listCtx, src.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if info.Err != nil {
			return nil, c.s3Error("listing", src, info.Err)
		}
		rel := strings.TrimPrefix(info.Key, prefix)
		if rel == "" || strings.HasSuffix(rel, "/") {
			continue
		}
		if err := checkRelative(src, rel); err != nil {
			return nil, err
		}
		rels = append(rels, rel)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("listing %s: %w", src.name, err)
	}
	if len(rels) == 0 {
		return nil, fmt.Errorf("listing s3://%s/%s on %s: %w: no objects under the prefix", src.bucket, prefix, c.endpoint, ErrNotFound)
	}
	sort.Strings(rels)
	return rels, nil
}

// Error codes that mean the server does not accept the credentials. XAdminUserNotFound is
// versitygw's answer to an unknown access key id, sent with status 404; without it a typo in
// ACCESS_KEY_ID would read as a missing object.
var credentialCodes = map[string]bool{
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"XAdminUserNotFound":    true,
}

var notFoundCodes = map[string]bool{
	"NoSuchKey":    true,
	"NoSuchBucket": true,
	"NotFound":     true,
}

// s3Error names the object and endpoint and maps the server's answer to the package sentinels,
// keeping the server's message. Codes are checked before HTTP statuses because servers disagree
// on statuses (see credentialCodes); the status is the fallback for codes we do not know and for
// HEAD responses, which carry no code at all.
func (c *Client) s3Error(operation string, target object, err error) error {
	where := fmt.Sprintf("%s s3://%s/%s on %s", operation, target.bucket, target.key, c.endpoint)
	var response minio.ErrorResponse
	if !errors.As(err, &response) {
		return fmt.Errorf("%s: %w", where, err)
	}
	switch {
	case credentialCodes[response.Code]:
		return fmt.Errorf("%s: %w: the server rejected the credentials (check %s and %s of the credential Secret): %w",
			where, ErrAccessDenied, DataAccessKeyID, DataSecretAccessKey, err)
	case notFoundCodes[response.Code]:
		return fmt.Errorf("%s: %w: %w", where, ErrNotFound, err)
	case response.Code == "AccessDenied" || response.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: %w: %w", where, ErrAccessDenied, err)
	case response.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s: %w: %w", where, ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}
