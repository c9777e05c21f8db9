package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
)

// indirectMark prefixes a dstDir whose src is an index of samples (upstream's indirect dataset).
const indirectMark = "@"

// pair is one download: src into the directory dstDir.
type pair struct{ src, dstDir string }

// parseArgs reads the flat list "src dstDir [src dstDir ...]".
func parseArgs(args []string) ([]pair, error) {
	if len(args) == 0 || len(args)%2 != 0 {
		return nil, fmt.Errorf("usage: sedna-storage-initializer src dstDir [src dstDir ...]: got %d arguments", len(args))
	}
	pairs := make([]pair, 0, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		src, dst := args[i], args[i+1]
		if src == "" {
			return nil, fmt.Errorf("argument %d: empty source", i+1)
		}
		if strings.HasPrefix(dst, indirectMark) {
			return nil, fmt.Errorf("argument %d: indirect (index file) downloads into %q are not supported", i+2, dst)
		}
		if !filepath.IsAbs(dst) {
			return nil, fmt.Errorf("argument %d: destination %q must be an absolute directory", i+2, dst)
		}
		pairs = append(pairs, pair{src: src, dstDir: filepath.Clean(dst)})
	}
	return pairs, nil
}

// s3Credentials reads the credentials GM injects; nil when there are none.
func s3Credentials(getenv func(string) string) (*storage.Credentials, error) {
	return storage.CredentialsFromEnv(getenv)
}

// downloader fetches sources; httpClient and the S3 client are seams for tests.
type downloader struct {
	httpClient *http.Client
	storage    *storage.Client
	getenv     func(string) string
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	pairs, err := parseArgs(args)
	if err != nil {
		return err
	}
	creds, err := s3Credentials(getenv)
	if err != nil {
		return err
	}
	client, err := storage.New("/", creds)
	if err != nil {
		return err
	}
	d := &downloader{httpClient: &http.Client{Timeout: 30 * time.Minute}, storage: client, getenv: getenv}
	for _, p := range pairs {
		if err := d.fetch(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// fetch downloads one pair and unpacks it when it is an archive.
func (d *downloader) fetch(ctx context.Context, p pair) error {
	logger := klog.FromContext(ctx)
	if err := os.MkdirAll(p.dstDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", p.dstDir, err)
	}
	var target string
	var err error
	switch scheme := schemeOf(p.src); scheme {
	case "s3":
		target, err = d.fetchS3(ctx, p)
	case "http", "https":
		target, err = d.fetchHTTP(ctx, p)
	case "file", "":
		target, err = linkLocal(p)
	default:
		err = fmt.Errorf("unsupported scheme %q (s3, http, https, file or a local path)", scheme)
	}
	if err != nil {
		return fmt.Errorf("downloading %s into %s: %w", p.src, p.dstDir, err)
	}
	logger.Info("Downloaded", "src", redact(p.src), "path", target)
	if info, statErr := os.Lstat(target); statErr == nil && info.Mode().IsRegular() {
		extracted, err := extract(target, p.dstDir)
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", target, err)
		}
		if extracted {
			logger.Info("Unpacked", "archive", target, "into", p.dstDir)
		}
	}
	return nil
}

func schemeOf(src string) string {
	scheme, _, ok := strings.Cut(src, "://")
	if !ok {
		return ""
	}
	return strings.ToLower(scheme)
}

// redact drops the query of a URL, which may hold a signature.
func redact(src string) string {
	before, _, _ := strings.Cut(src, "?")
	return before
}

// fetchS3 downloads an object into dstDir, or a prefix (a URL ending in "/", or one naming no
// object) into dstDir/<base name>/ as upstream does.
func (d *downloader) fetchS3(ctx context.Context, p pair) (string, error) {
	if strings.HasSuffix(p.src, "/") {
		return p.dstDir, d.storage.Download(ctx, p.src, p.dstDir+"/")
	}
	base := path.Base(p.src)
	err := d.storage.Download(ctx, p.src, p.dstDir+"/")
	if errors.Is(err, storage.ErrNotFound) {
		dir := filepath.Join(p.dstDir, base)
		if prefixErr := d.storage.Download(ctx, p.src+"/", dir+"/"); prefixErr == nil {
			return dir, nil
		}
	}
	return filepath.Join(p.dstDir, base), err
}

// fetchHTTP GETs the URL into dstDir/<base name of its path>, atomically.
func (d *downloader) fetchHTTP(ctx context.Context, p pair) (string, error) {
	u, err := url.Parse(p.src)
	if err != nil {
		return "", err
	}
	base := path.Base(u.Path)
	if base == "/" || base == "." || base == "" {
		return "", errors.New("the URL path names no file")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.src, nil)
	if err != nil {
		return "", err
	}
	if raw := d.getenv(u.Host + "-headers"); raw != "" {
		var headers map[string]string
		if err := json.Unmarshal([]byte(raw), &headers); err != nil {
			return "", fmt.Errorf("env %s-headers must be a JSON object of strings: %w", u.Host, err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
	}
	resp, err := d.httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }() // a read error below already reports a broken body
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("server answered %s", resp.Status)
	}
	target := filepath.Join(p.dstDir, base)
	return target, writeAtomic(target, resp.Body)
}

// writeAtomic writes r to target through a temporary file in the same directory, so that a
// failed download never leaves a truncated file under the final name.
func writeAtomic(target string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone after a successful rename
	if _, err := io.Copy(tmp, r); err != nil {
		_ = tmp.Close() // the copy error is the one to report
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close() // the chmod error is the one to report
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), target)
}

// linkLocal symlinks a local path (or file:// URL) into dstDir, as upstream: the data is already
// on the node, so copying it would only double the space.
func linkLocal(p pair) (string, error) {
	src := strings.TrimPrefix(p.src, "file://")
	if !filepath.IsAbs(src) {
		return "", fmt.Errorf("local path %q must be absolute", src)
	}
	if _, err := os.Stat(src); err != nil {
		return "", err
	}
	target := filepath.Join(p.dstDir, filepath.Base(filepath.Clean(src)))
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	return target, os.Symlink(src, target)
}

// extract unpacks a .tar, .tar.gz, .tgz or .zip archive into dir; other files are left alone.
// Entries that would land outside dir, and links, are refused.
func extract(archive, dir string) (bool, error) {
	name := strings.ToLower(archive)
	switch {
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		f, err := os.Open(archive)
		if err != nil {
			return false, err
		}
		defer func() { _ = f.Close() }() // read-only
		gz, err := gzip.NewReader(f)
		if err != nil {
			return false, err
		}
		return true, extractTar(tar.NewReader(gz), dir)
	case strings.HasSuffix(name, ".tar"):
		f, err := os.Open(archive)
		if err != nil {
			return false, err
		}
		defer func() { _ = f.Close() }() // read-only
		return true, extractTar(tar.NewReader(f), dir)
	case strings.HasSuffix(name, ".zip"):
		return true, extractZip(archive, dir)
	}
	return false, nil
}

// entryPath resolves an archive entry name below dir, refusing escapes.
func entryPath(dir, name string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(name))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("entry %q would land outside %s", name, dir)
	}
	return filepath.Join(dir, clean), nil
}

func extractTar(r *tar.Reader, dir string) error {
	for {
		header, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if header.Typeflag == tar.TypeXGlobalHeader {
			continue // PAX global metadata (git archive writes one), not a file
		}
		target, err := entryPath(dir, header.Name)
		if err != nil {
			return err
		}
		switch header.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeAtomic(target, r); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q: links and special files are not unpacked", header.Name)
		}
	}
}

func extractZip(archive, dir string) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return err
	}
	defer func() { _ = zr.Close() }() // read-only
	for _, file := range zr.File {
		target, err := entryPath(dir, file.Name)
		if err != nil {
			return err
		}
		mode := file.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			rc, err := file.Open()
			if err != nil {
				return err
			}
			err = writeAtomic(target, rc)
			_ = rc.Close() // read-only; a bad checksum surfaces as the write's error
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q: links and special files are not unpacked", file.Name)
		}
	}
	return nil
}
