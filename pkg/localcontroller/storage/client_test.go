package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newS3Client returns a Client for a fresh test server and the rootfs its host paths live under.
func newS3Client(t *testing.T) (*Client, *testS3, string) {
	t.Helper()
	server := startS3(t)
	rootfs := t.TempDir()
	creds := server.creds
	client, err := New(rootfs, &creds)
	require.NoError(t, err)
	return client, server, rootfs
}

// writeHostFile creates a file at the host path hostPath under rootfs.
func writeHostFile(t *testing.T, rootfs, hostPath, content string) {
	t.Helper()
	file := filepath.Join(rootfs, filepath.FromSlash(hostPath))
	require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
	require.NoError(t, os.WriteFile(file, []byte(content), 0o600))
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	content, err := os.ReadFile(file)
	require.NoError(t, err)
	return string(content)
}

// requireNoTempFiles fails if an atomic write left a temporary file behind in dir.
func requireNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, entry := range entries {
		require.NotContains(t, entry.Name(), ".tmp-", "temporary file left in %s", dir)
	}
}

func TestNew(t *testing.T) {
	_, err := New("rootfs", nil)
	require.ErrorContains(t, err, `rootfs "rootfs" must be an absolute path`)

	_, err = New("/rootfs", &Credentials{})
	require.ErrorContains(t, err, "without an endpoint")

	client, err := New("/rootfs", nil)
	require.NoError(t, err)
	require.NotNil(t, client)
}

func TestS3WithoutCredentials(t *testing.T) {
	client, err := New(t.TempDir(), nil)
	require.NoError(t, err)
	ctx := context.Background()

	_, err = client.ReadFile(ctx, "s3://models/a.txt", 10)
	require.ErrorIs(t, err, ErrNoCredentials)
	require.ErrorContains(t, err, "s3://models/a.txt")
	require.ErrorIs(t, client.Copy(ctx, "/data/a", "s3://models/a"), ErrNoCredentials)
	require.ErrorIs(t, client.Download(ctx, "s3://models/a", t.TempDir()+"/a"), ErrNoCredentials)
}

func TestReadFile(t *testing.T) {
	client, server, rootfs := newS3Client(t)
	ctx := context.Background()
	const index = "a.jpg 1\nb.jpg 0\n"
	server.put(t, "datasets/index.txt", index)
	writeHostFile(t, rootfs, "/data/index.txt", index)

	for _, url := range []string{server.url("datasets/index.txt"), "/data/index.txt"} {
		t.Run(url, func(t *testing.T) {
			content, err := client.ReadFile(ctx, url, int64(len(index)))
			require.NoError(t, err, "a file of exactly maxBytes is allowed")
			require.Equal(t, index, string(content))

			_, err = client.ReadFile(ctx, url, int64(len(index))-1)
			require.ErrorIs(t, err, ErrTooLarge)
			require.ErrorContains(t, err, url)

			_, err = client.ReadFile(ctx, url, 0)
			require.ErrorContains(t, err, "maxBytes must be positive")
		})
	}

	_, err := client.ReadFile(ctx, server.url("datasets/"), 100)
	require.ErrorContains(t, err, "names a directory")
	_, err = client.ReadFile(ctx, "/data/", 100)
	require.ErrorContains(t, err, "names a directory")
	// A directory named without the trailing slash is still not a file.
	_, err = client.ReadFile(ctx, "/data", 100)
	require.ErrorContains(t, err, "not a regular file")
}

func TestDownloadObject(t *testing.T) {
	client, server, _ := newS3Client(t)
	ctx := context.Background()
	server.put(t, "models/il/model.pb", "trained weights")
	scratch := t.TempDir()
	target := filepath.Join(scratch, "new", "dir", "model.pb")

	require.NoError(t, client.Download(ctx, server.url("models/il/model.pb"), target))
	require.Equal(t, "trained weights", readFile(t, target))
	info, err := os.Stat(target)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), info.Mode().Perm(), "workers of other users must be able to read models")
	requireNoTempFiles(t, filepath.Dir(target))

	// A second download replaces the file.
	server.put(t, "models/il/model.pb", "retrained")
	require.NoError(t, client.Download(ctx, server.url("models/il/model.pb"), target))
	require.Equal(t, "retrained", readFile(t, target))

	// Into a directory (trailing slash) the file keeps its name.
	require.NoError(t, client.Download(ctx, server.url("models/il/model.pb"), scratch+"/"))
	require.Equal(t, "retrained", readFile(t, filepath.Join(scratch, "model.pb")))
}

func TestDownloadPrefix(t *testing.T) {
	client, server, _ := newS3Client(t)
	ctx := context.Background()
	server.put(t, "models/m1/saved_model.pb", "graph")
	server.put(t, "models/m1/variables/variables.index", "index")
	server.put(t, "models/m1/variables/variables.data-00000-of-00001", "data")
	server.put(t, "models/m1/empty-dir/", "") // a directory marker holds no file
	server.put(t, "models/m10/other.pb", "a sibling whose name merely starts with m1")
	server.put(t, "models/m1.pb", "another sibling")
	target := filepath.Join(t.TempDir(), "m1")

	require.NoError(t, client.Download(ctx, server.url("models/m1/"), target))

	var got []string
	require.NoError(t, filepath.WalkDir(target, func(current string, entry os.DirEntry, err error) error {
		require.NoError(t, err)
		if !entry.IsDir() {
			rel, relErr := filepath.Rel(target, current)
			require.NoError(t, relErr)
			got = append(got, filepath.ToSlash(rel)+"="+readFile(t, current))
		}
		return nil
	}))
	require.Equal(t, []string{
		"saved_model.pb=graph",
		"variables/variables.data-00000-of-00001=data",
		"variables/variables.index=index",
	}, got)
}

func TestDownloadMissing(t *testing.T) {
	client, server, _ := newS3Client(t)
	ctx := context.Background()
	server.put(t, "models/present.pb", "x")
	scratch := t.TempDir()

	tests := map[string]string{
		"missing key":    server.url("models/absent.pb"),
		"missing prefix": server.url("models/absent/"),
		"missing bucket": "s3://no-such-bucket/models/a.pb",
		"missing host":   "/no/such/file",
	}
	for name, url := range tests {
		t.Run(name, func(t *testing.T) {
			target := filepath.Join(scratch, name)
			err := client.Download(ctx, url, target)
			require.ErrorIs(t, err, ErrNotFound)
			require.ErrorContains(t, err, strings.TrimPrefix(url, "s3://"))
			_, statErr := os.Stat(target)
			require.ErrorIs(t, statErr, os.ErrNotExist, "a failed download must not leave a file")
		})
	}
	requireNoTempFiles(t, scratch)
}

func TestMissingObjectIsNotFound(t *testing.T) {
	client, server, _ := newS3Client(t)
	ctx := context.Background()
	missing := server.url("datasets/absent.txt")

	_, err := client.ReadFile(ctx, missing, 100)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "s3://sedna-test/datasets/absent.txt")
	require.ErrorContains(t, err, server.creds.Endpoint)

	_, _, err = client.Stat(ctx, missing)
	require.ErrorIs(t, err, ErrNotFound)

	err = client.Copy(ctx, missing, server.url("datasets/copy.txt"))
	require.ErrorIs(t, err, ErrNotFound)

	_, err = client.ReadFile(ctx, "/no/such/index.txt", 100)
	require.ErrorIs(t, err, ErrNotFound)

	// Other failures must not look like "not there yet".
	_, err = client.ReadFile(ctx, server.url("datasets/"), 100)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrNotFound)
}

func TestWrongCredentials(t *testing.T) {
	server := startS3(t)
	server.put(t, "datasets/index.txt", "a.jpg\n")
	ctx := context.Background()

	tests := map[string]Credentials{
		"wrong secret":   {Endpoint: server.creds.Endpoint, AccessKeyID: server.creds.AccessKeyID, SecretAccessKey: "wrong"},
		"unknown key id": {Endpoint: server.creds.Endpoint, AccessKeyID: "AKUNKNOWN", SecretAccessKey: server.creds.SecretAccessKey},
		"both wrong":     {Endpoint: server.creds.Endpoint, AccessKeyID: "AKUNKNOWN", SecretAccessKey: "wrong"},
	}
	for name, creds := range tests {
		t.Run(name, func(t *testing.T) {
			client, err := New(t.TempDir(), &creds)
			require.NoError(t, err)

			_, err = client.ReadFile(ctx, server.url("datasets/index.txt"), 100)
			require.ErrorIs(t, err, ErrAccessDenied)
			require.NotErrorIs(t, err, ErrNotFound)
			require.ErrorContains(t, err, "s3://sedna-test/datasets/index.txt")
			require.ErrorContains(t, err, server.creds.Endpoint)
			require.ErrorContains(t, err, "check ACCESS_KEY_ID and SECRET_ACCESS_KEY")
			require.NotContains(t, err.Error(), server.creds.SecretAccessKey)

			err = client.Upload(ctx, writeTemp(t, "x"), server.url("datasets/new.txt"))
			require.ErrorIs(t, err, ErrAccessDenied)
		})
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "upload.bin")
	require.NoError(t, os.WriteFile(file, []byte(content), 0o600))
	return file
}

func TestUpload(t *testing.T) {
	client, server, _ := newS3Client(t)
	ctx := context.Background()

	require.NoError(t, client.Upload(ctx, writeTemp(t, "model bytes"), server.url("output/train/1/model.pb")))
	require.Equal(t, "model bytes", server.get(t, "output/train/1/model.pb"))

	// A file uploaded onto a prefix keeps its name.
	require.NoError(t, client.Upload(ctx, writeTemp(t, "again"), server.url("output/train/2/")))
	require.Equal(t, "again", server.get(t, "output/train/2/upload.bin"))

	// A directory (trailing slash) uploads every file below it.
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "variables"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "saved_model.pb"), []byte("graph"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "variables", "variables.index"), []byte("index"), 0o600))
	require.NoError(t, client.Upload(ctx, dir+"/", server.url("output/train/3/model")))
	require.Equal(t, "graph", server.get(t, "output/train/3/model/saved_model.pb"))
	require.Equal(t, "index", server.get(t, "output/train/3/model/variables/variables.index"))

	err := client.Upload(ctx, filepath.Join(dir, "absent.pb"), server.url("output/x.pb"))
	require.ErrorIs(t, err, ErrNotFound)
}

func TestCopy(t *testing.T) {
	client, server, rootfs := newS3Client(t)
	ctx := context.Background()
	server.put(t, "models/trained.pb", "from s3")
	writeHostFile(t, rootfs, "/models/trained.pb", "from host")

	tests := map[string]struct {
		src, dst string
		// check reads the destination back outside the Client.
		check func(t *testing.T) string
		want  string
	}{
		"host to s3": {
			src: "/models/trained.pb", dst: server.url("deploy/a.pb"),
			check: func(t *testing.T) string { return server.get(t, "deploy/a.pb") },
			want:  "from host",
		},
		"s3 to host": {
			src: server.url("models/trained.pb"), dst: "/deploy/b.pb",
			check: func(t *testing.T) string { return readFile(t, filepath.Join(rootfs, "deploy", "b.pb")) },
			want:  "from s3",
		},
		"s3 to s3": {
			src: server.url("models/trained.pb"), dst: server.url("deploy/c.pb"),
			check: func(t *testing.T) string { return server.get(t, "deploy/c.pb") },
			want:  "from s3",
		},
		"host to host": {
			src: "/models/trained.pb", dst: "/deploy/nested/d.pb",
			check: func(t *testing.T) string { return readFile(t, filepath.Join(rootfs, "deploy", "nested", "d.pb")) },
			want:  "from host",
		},
		"file onto a host directory keeps its name": {
			src: server.url("models/trained.pb"), dst: "/deploy/dir/",
			check: func(t *testing.T) string { return readFile(t, filepath.Join(rootfs, "deploy", "dir", "trained.pb")) },
			want:  "from s3",
		},
		"file onto an s3 prefix keeps its name": {
			src: "/models/trained.pb", dst: server.url("deploy/prefix/"),
			check: func(t *testing.T) string { return server.get(t, "deploy/prefix/trained.pb") },
			want:  "from host",
		},
		"onto itself is a no-op": {
			src: "/models/trained.pb", dst: "/models/trained.pb",
			check: func(t *testing.T) string { return readFile(t, filepath.Join(rootfs, "models", "trained.pb")) },
			want:  "from host",
		},
		"s3 onto itself is a no-op": {
			src: server.url("models/trained.pb"), dst: server.url("models/trained.pb"),
			check: func(t *testing.T) string { return server.get(t, "models/trained.pb") },
			want:  "from s3",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, client.Copy(ctx, tc.src, tc.dst))
			require.Equal(t, tc.want, tc.check(t))
		})
	}
	requireNoTempFiles(t, filepath.Join(rootfs, "deploy"))
	// Host paths land under rootfs, never in the LC's own filesystem.
	_, err := os.Stat("/deploy/b.pb")
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestCopyTree(t *testing.T) {
	client, server, rootfs := newS3Client(t)
	ctx := context.Background()
	server.put(t, "models/m1/saved_model.pb", "graph")
	server.put(t, "models/m1/variables/variables.index", "index")

	// s3 tree → host tree → s3 tree → s3 tree (server-side), then compare the end with the start.
	require.NoError(t, client.Copy(ctx, server.url("models/m1/"), "/data/m1/"))
	require.Equal(t, "graph", readFile(t, filepath.Join(rootfs, "data", "m1", "saved_model.pb")))
	require.Equal(t, "index", readFile(t, filepath.Join(rootfs, "data", "m1", "variables", "variables.index")))

	require.NoError(t, client.Copy(ctx, "/data/m1/", server.url("models/m2/")))
	require.NoError(t, client.Copy(ctx, server.url("models/m2/"), server.url("models/m3")))
	require.Equal(t, "graph", server.get(t, "models/m3/saved_model.pb"))
	require.Equal(t, "index", server.get(t, "models/m3/variables/variables.index"))

	// A host directory named without the trailing slash is refused rather than guessed.
	err := client.Copy(ctx, "/data/m1", server.url("models/m4/"))
	require.ErrorContains(t, err, "not a regular file")
}

func TestStat(t *testing.T) {
	client, server, rootfs := newS3Client(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Minute)
	server.put(t, "datasets/index.txt", "12345")
	writeHostFile(t, rootfs, "/data/index.txt", "1234567")
	hostTime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	require.NoError(t, os.Chtimes(filepath.Join(rootfs, "data", "index.txt"), hostTime, hostTime))

	size, modTime, err := client.Stat(ctx, server.url("datasets/index.txt"))
	require.NoError(t, err)
	require.Equal(t, int64(5), size)
	require.True(t, modTime.After(before), "modTime %v should be recent", modTime)

	size, modTime, err = client.Stat(ctx, "/data/index.txt")
	require.NoError(t, err)
	require.Equal(t, int64(7), size)
	require.True(t, modTime.Equal(hostTime), "modTime %v, want %v", modTime, hostTime)

	_, _, err = client.Stat(ctx, "/data/absent.txt")
	require.ErrorIs(t, err, ErrNotFound)
	_, _, err = client.Stat(ctx, server.url("datasets/"))
	require.ErrorContains(t, err, "names a directory")
}

func TestCheckRelative(t *testing.T) {
	tree := object{name: "s3://b/models/"}
	for _, rel := range []string{"a.pb", "variables/variables.index", "a..b/c"} {
		require.NoError(t, checkRelative(tree, rel), rel)
	}
	for _, rel := range []string{"", "../x", "a/../../x", "a/..", "/etc/passwd", "a//b", "./a", "a/./b"} {
		require.Error(t, checkRelative(tree, rel), rel)
	}
}

// TestDownloadPrefixRefusesEscapingKeys needs a listing the test server cannot produce: versitygw
// stores keys as files and rejects ".." in them, while AWS S3 accepts any key. A listing-only
// stand-in returns one harmless and one hostile key; the download must fail before writing even
// the harmless one.
func TestDownloadPrefixRefusesEscapingKeys(t *testing.T) {
	var objectRequests int
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query := r.URL.Query()
		switch {
		case query.Has("location"):
			_, _ = io.WriteString(w, `<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>`)
		case query.Get("list-type") == "2":
			_, _ = fmt.Fprintf(w, `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`+
				`<Name>models</Name><Prefix>m1/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>`+
				`<Contents><Key>m1/a.pb</Key><Size>1</Size></Contents>`+
				`<Contents><Key>m1/../../escape.txt</Key><Size>1</Size></Contents>`+
				`</ListBucketResult>`)
		default:
			objectRequests++
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	t.Cleanup(stub.Close)

	client, err := New(t.TempDir(), &Credentials{
		Endpoint: strings.TrimPrefix(stub.URL, "http://"), AccessKeyID: "AK", SecretAccessKey: "SK",
	})
	require.NoError(t, err)
	parent := t.TempDir()
	target := filepath.Join(parent, "download")

	err = client.Download(context.Background(), "s3://models/m1/", target)
	require.ErrorContains(t, err, `refusing "../../escape.txt"`)
	require.Zero(t, objectRequests, "nothing may be fetched once a key is refused")
	entries, readErr := os.ReadDir(parent)
	require.NoError(t, readErr)
	require.Empty(t, entries)
}

// failingReader delivers some bytes and then fails, like a connection dropping mid-download.
type failingReader struct{ sent bool }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.sent {
		return 0, errors.New("connection reset")
	}
	r.sent = true
	return copy(p, "partial"), nil
}

func TestWriteFileAtomicKeepsOldContentOnFailure(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "model.pb")
	require.NoError(t, os.WriteFile(target, []byte("old model"), 0o644))

	_, err := writeFileAtomic(target, &failingReader{})
	require.ErrorContains(t, err, "connection reset")
	require.Equal(t, "old model", readFile(t, target), "readers must never see a partial model")
	requireNoTempFiles(t, dir)

	written, err := writeFileAtomic(target, strings.NewReader("new model"))
	require.NoError(t, err)
	require.Equal(t, int64(len("new model")), written)
	require.Equal(t, "new model", readFile(t, target))
	requireNoTempFiles(t, dir)
}

func TestCopyStopsOnCancelledContext(t *testing.T) {
	rootfs := t.TempDir()
	client, err := New(rootfs, nil)
	require.NoError(t, err)
	writeHostFile(t, rootfs, "/models/a.pb", "weights")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err = client.Copy(ctx, "/models/a.pb", "/deploy/a.pb")
	require.ErrorIs(t, err, context.Canceled)
	_, statErr := os.Stat(filepath.Join(rootfs, "deploy", "a.pb"))
	require.ErrorIs(t, statErr, os.ErrNotExist)
}
