package lifelonglearning

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"

	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
)

const (
	// dirMode is group-writable: the workers (65532) write the directories the LC makes for
	// them, through the group they inherit from a setgid output directory (cmd/sedna-lc sets
	// umask 002; docs/install.md).
	dirMode  os.FileMode = 0o775
	fileMode os.FileMode = 0o644
)

// checkHostPath accepts a clean absolute host path.
func checkHostPath(hostPath string) error {
	switch {
	case hostPath == "":
		return errors.New("empty path")
	case strings.Contains(hostPath, "://"):
		return fmt.Errorf("%q is a URL, not a host path", hostPath)
	case !path.IsAbs(hostPath):
		return fmt.Errorf("%q is not an absolute path", hostPath)
	case strings.IndexByte(hostPath, 0) >= 0:
		return fmt.Errorf("%q contains a NUL byte", hostPath)
	}
	return nil
}

// readHostFile reads a host file below the allowed data roots, at most limit bytes.
func (j *job) readHostFile(hostPath string, limit int64) ([]byte, error) {
	if err := checkHostPath(hostPath); err != nil {
		return nil, err
	}
	file, err := j.m.opts.Resolver.Open(hostPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = file.Close() }()
	if info, err := file.Stat(); err != nil || !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", hostPath)
	}
	content, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", hostPath, err)
	}
	if int64(len(content)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", hostPath, limit)
	}
	return content, nil
}

// writeData writes the round's samples, after the dataset's csv header if it has one.
func (j *job) writeData(hostPath string, samples []string) error {
	var b strings.Builder
	if j.rec().Header != "" {
		b.WriteString(j.rec().Header + "\n")
	}
	for _, sample := range samples {
		b.WriteString(sample + "\n")
	}
	return j.writeFile(hostPath, []byte(b.String()))
}

// writeFile replaces the host file atomically (a temporary file renamed over it), below
// spec.outputDir, which must exist below the allowed data roots.
func (j *job) writeFile(hostPath string, content []byte) error {
	root, rel, err := j.outputRoot(hostPath)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	if err := root.MkdirAll(path.Dir(rel), dirMode); err != nil {
		return fmt.Errorf("writing %s: %w", hostPath, err)
	}
	tmp := rel + ".tmp"
	file, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", hostPath, err)
	}
	_, err = file.Write(content)
	if closeErr := file.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = root.Rename(tmp, rel)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("writing %s: %w", hostPath, err)
	}
	return nil
}

func (j *job) mkdir(hostPath string) error {
	root, rel, err := j.outputRoot(hostPath)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	if err := root.MkdirAll(rel, dirMode); err != nil {
		return fmt.Errorf("creating %s: %w", hostPath, err)
	}
	return nil
}

// outputRoot opens spec.outputDir (confined to the data roots) and returns hostPath relative to it.
func (j *job) outputRoot(hostPath string) (*hostfs.Root, string, error) {
	out := strings.TrimSuffix(j.spec.obj.Spec.OutputDir, "/")
	rel, ok := strings.CutPrefix(hostPath, out+"/")
	if !ok || rel == "" || path.Clean(rel) != rel || strings.HasPrefix(rel, "../") {
		return nil, "", fmt.Errorf("%s is not below spec.outputDir %s", hostPath, out)
	}
	root, err := j.m.opts.Resolver.OpenRoot(out)
	if err != nil {
		return nil, "", fmt.Errorf("opening spec.outputDir %s: %w", out, err)
	}
	return root, rel, nil
}

// refusedError is an index URL this LC must not read: the round ends undeployed.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// fetchIndex reads the trained KB index: a host path below the data roots, or an http(s) URL
// below the configured KB's /knowledgebase/ route, fetched with the KB token.
func (j *job) fetchIndex(ctx context.Context, url string) ([]byte, error) {
	limit := j.m.opts.MaxIndexBytes
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		if err := checkHostPath(url); err != nil {
			return nil, &refusedError{fmt.Errorf("index URL: %w", err)}
		}
		return j.readHostFile(url, limit)
	}
	kb := strings.TrimSuffix(j.m.opts.KBServer, "/")
	if kb == "" {
		return nil, &refusedError{fmt.Errorf("index %s is on http(s) but this LC has no KB server configured", url)}
	}
	if !strings.HasPrefix(url, kb+"/knowledgebase/") || strings.Contains(url, "/../") || strings.Contains(url, "@") {
		return nil, &refusedError{fmt.Errorf("index %s is not below the KB's %s/knowledgebase/ route", url, kb)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &refusedError{fmt.Errorf("index URL %s: %w", url, err)}
	}
	if j.m.opts.KBToken != "" {
		req.Header.Set("Authorization", "Bearer "+j.m.opts.KBToken)
	}
	resp, err := j.m.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("downloading index %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("downloading index %s: KB answered %s", url, resp.Status)
	}
	content, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("downloading index %s: %w", url, err)
	}
	if int64(len(content)) > limit {
		return nil, fmt.Errorf("index %s is larger than %d bytes", url, limit)
	}
	return content, nil
}
