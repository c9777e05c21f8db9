package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// OpenObject opens the S3 object url for reading and returns it with its size. Only s3:// URLs:
// the LC opens host paths through package hostfs, confined to its data roots.
func (c *Client) OpenObject(ctx context.Context, url string) (io.ReadCloser, int64, error) {
	src, err := c.resolveObject(url)
	if err != nil {
		return nil, 0, err
	}
	reader, size, err := c.openS3(ctx, src)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", url, err)
	}
	return reader, size, nil
}

// PutObject writes size bytes read from r as the S3 object url, replacing it. Only s3:// URLs,
// as for OpenObject.
func (c *Client) PutObject(ctx context.Context, url string, r io.Reader, size int64) error {
	dst, err := c.resolveObject(url)
	if err != nil {
		return err
	}
	written, err := c.putS3(ctx, dst, r, size)
	if err != nil {
		return fmt.Errorf("writing %s: %w", url, err)
	}
	if written != size {
		return fmt.Errorf("writing %s: wrote %d bytes, want %d", url, written, size)
	}
	return nil
}

// resolveObject resolves url, which must name one S3 object (not a prefix ending in "/").
func (c *Client) resolveObject(url string) (object, error) {
	loc, err := ParseURL(url)
	if err != nil {
		return object{}, err
	}
	if loc.Scheme != SchemeS3 {
		return object{}, fmt.Errorf("%s is not an s3:// URL", url)
	}
	obj, err := c.resolve(url)
	if err != nil {
		return object{}, err
	}
	if obj.tree {
		return object{}, fmt.Errorf("%s names a prefix, not an object", url)
	}
	return obj, nil
}

// CredentialsFromSecretObject decodes the S3 credentials from a Secret as GM sends it to the LC
// (its "annotations" and base64 "data"), naming what is wrong but never a value.
func CredentialsFromSecretObject(object []byte) (Credentials, error) {
	var secret struct {
		Annotations map[string]string `json:"annotations"`
		Data        map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal(object, &secret); err != nil {
		return Credentials{}, fmt.Errorf("the Secret does not parse: %w", err)
	}
	return CredentialsFromSecret(secret.Annotations, secret.Data)
}
