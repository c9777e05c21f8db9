package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/storage/s3test"
)

func TestParseArgs(t *testing.T) {
	tests := map[string]struct {
		args []string
		want []pair
		err  string
	}{
		"pairs": {
			args: []string{"s3://b/m.pb", "/downloads/b", "http://h/x.zip", "/downloads/h/"},
			want: []pair{{"s3://b/m.pb", "/downloads/b"}, {"http://h/x.zip", "/downloads/h"}},
		},
		"none":               {args: nil, err: "usage"},
		"odd":                {args: []string{"s3://b/m.pb"}, err: "got 1 arguments"},
		"relative dst":       {args: []string{"s3://b/m.pb", "downloads"}, err: "must be an absolute directory"},
		"empty src":          {args: []string{"", "/d"}, err: "empty source"},
		"indirect not yet":   {args: []string{"/data/index.txt", "@/downloads/data"}, err: "indirect"},
		"second pair broken": {args: []string{"s3://b/m.pb", "/d", "x", "y"}, err: "argument 4"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseArgs(tc.args)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestS3CredentialsFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	creds, err := s3Credentials(env(nil))
	require.NoError(t, err)
	require.Nil(t, creds)
	creds, err = s3Credentials(env(map[string]string{"S3_ENDPOINT_URL": "http://minio:9000", "ACCESS_KEY_ID": "a", "SECRET_ACCESS_KEY": "s"}))
	require.NoError(t, err)
	require.Equal(t, "minio:9000", creds.Endpoint)
	require.False(t, creds.UseHTTPS)
	creds, err = s3Credentials(env(map[string]string{"S3_ENDPOINT_URL": "minio:9000", "ACCESS_KEY_ID": "a", "SECRET_ACCESS_KEY": "s"}))
	require.NoError(t, err)
	require.True(t, creds.UseHTTPS)
	_, err = s3Credentials(env(map[string]string{"ACCESS_KEY_ID": "a"}))
	require.ErrorContains(t, err, "set together")
	_, err = s3Credentials(env(map[string]string{"S3_ENDPOINT_URL": "ftp://x", "ACCESS_KEY_ID": "a", "SECRET_ACCESS_KEY": "s"}))
	require.ErrorContains(t, err, "S3_ENDPOINT_URL")
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	// A PAX global header first, as git archive writes: metadata, not a file to unpack.
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
		PAXRecords: map[string]string{"comment": "0123456789abcdef"}}))
	for name, content := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestHTTPAndLocalDownloads(t *testing.T) {
	archive := tarGz(t, map[string]string{"model/saved_model.pb": "graph", "model/variables/v": "weights"})
	zipped := zipOf(t, map[string]string{"labels.txt": "helmet\nhead\n"})
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/m/model.pb":
			_, _ = w.Write([]byte("big model"))
		case "/m/model.tar.gz":
			_, _ = w.Write(archive)
		case "/m/labels.zip":
			_, _ = w.Write(zipped)
		case "/private/m.pb":
			if r.Header.Get("Authorization") != "Bearer t" {
				http.Error(w, "no", http.StatusForbidden)
				return
			}
			_, _ = w.Write([]byte("private"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer server.Close()
	host := strings.TrimPrefix(server.URL, "http://")

	local := filepath.Join(t.TempDir(), "little.pb")
	require.NoError(t, os.WriteFile(local, []byte("little model"), 0o644))

	out := t.TempDir()
	env := map[string]string{host + "-headers": `{"Authorization":"Bearer t"}`}
	require.NoError(t, run(context.Background(), []string{
		server.URL + "/m/model.pb", filepath.Join(out, "a"),
		server.URL + "/m/model.tar.gz", filepath.Join(out, "b"),
		server.URL + "/m/labels.zip", filepath.Join(out, "c"),
		server.URL + "/private/m.pb", filepath.Join(out, "d"),
		local, filepath.Join(out, "e"),
		"file://" + local, filepath.Join(out, "f"),
	}, func(k string) string { return env[k] }))

	read := func(p string) string {
		data, err := os.ReadFile(filepath.Join(out, p))
		require.NoError(t, err)
		return string(data)
	}
	require.Equal(t, "big model", read("a/model.pb"))
	require.Equal(t, "graph", read("b/model/saved_model.pb"))
	require.Equal(t, "weights", read("b/model/variables/v"))
	require.FileExists(t, filepath.Join(out, "b/model.tar.gz"), "the archive stays where MODEL_URL points")
	require.Equal(t, "helmet\nhead\n", read("c/labels.txt"))
	require.Equal(t, "private", read("d/m.pb"))
	require.Equal(t, "little model", read("e/little.pb"))
	link, err := os.Readlink(filepath.Join(out, "f/little.pb"))
	require.NoError(t, err)
	require.Equal(t, local, link, "local files are linked, not copied")

	err = run(context.Background(), []string{server.URL + "/m/absent.pb", filepath.Join(out, "g")}, os.Getenv)
	require.ErrorContains(t, err, "404")
	require.NoFileExists(t, filepath.Join(out, "g/absent.pb"), "nothing left behind")
	err = run(context.Background(), []string{"ftp://h/x", filepath.Join(out, "h")}, os.Getenv)
	require.ErrorContains(t, err, `unsupported scheme "ftp"`)
	err = run(context.Background(), []string{"s3://bkt/x", filepath.Join(out, "i")}, func(string) string { return "" })
	require.ErrorContains(t, err, "no S3 credentials")
}

func TestArchivesCannotEscape(t *testing.T) {
	out := t.TempDir()
	archive := filepath.Join(out, "evil.tar.gz")
	require.NoError(t, os.WriteFile(archive, tarGz(t, map[string]string{"../escaped": "x"}), 0o644))
	_, err := extract(archive, filepath.Join(out, "dir"))
	require.ErrorContains(t, err, "outside")
	require.NoFileExists(t, filepath.Join(out, "escaped"))

	zipped := filepath.Join(out, "evil.zip")
	require.NoError(t, os.WriteFile(zipped, zipOf(t, map[string]string{"../escaped-zip": "x"}), 0o644))
	_, err = extract(zipped, filepath.Join(out, "dir"))
	require.Error(t, err, "refused by archive/zip or by entryPath")
	require.NoFileExists(t, filepath.Join(out, "escaped-zip"))
}

func TestS3Downloads(t *testing.T) {
	server := s3test.Start(t, "models")
	server.Put(t, "yolo/big.pb", "big model")
	server.Put(t, "tree/a.txt", "a")
	server.Put(t, "tree/sub/b.txt", "b")
	env := map[string]string{
		"S3_ENDPOINT_URL": "http://" + server.Endpoint, "ACCESS_KEY_ID": server.AccessKey, "SECRET_ACCESS_KEY": server.SecretKey,
	}
	out := t.TempDir()
	require.NoError(t, run(context.Background(), []string{
		server.URL("yolo/big.pb"), filepath.Join(out, "models/yolo"),
		server.URL("tree/"), filepath.Join(out, "models/tree"),
		server.URL("tree"), filepath.Join(out, "prefix"),
	}, func(k string) string { return env[k] }))
	read := func(p string) string {
		data, err := os.ReadFile(filepath.Join(out, p))
		require.NoError(t, err)
		return string(data)
	}
	require.Equal(t, "big model", read("models/yolo/big.pb"))
	require.Equal(t, "a", read("models/tree/a.txt"))
	require.Equal(t, "b", read("models/tree/sub/b.txt"))
	require.Equal(t, "b", read("prefix/tree/sub/b.txt"), "a prefix without a slash keeps its base name")

	err := run(context.Background(), []string{server.URL("absent.pb"), filepath.Join(out, "x")}, func(k string) string { return env[k] })
	require.ErrorContains(t, err, "not found")
}
