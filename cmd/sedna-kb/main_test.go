package main

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/pkg/sdk/env"
)

func TestParseConfig(t *testing.T) {
	cfg, err := parseConfig(nil, env.New(env.MapLookup(map[string]string{})))
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9020", cfg.bindAddr)
	require.Equal(t, "/var/lib/sedna-kb/files", cfg.files)
	require.True(t, cfg.options.Compat, "the defaults are upstream's: open")

	// A write token alone closes the server to anonymous callers; SEDNA_KB_COMPAT=true reopens it.
	cfg, err = parseConfig(nil, env.New(env.MapLookup(map[string]string{"SEDNA_KB_TOKEN": "secret"})))
	require.NoError(t, err)
	require.False(t, cfg.options.Compat, "a write token without SEDNA_KB_COMPAT must not admit anonymous writes")
	cfg, err = parseConfig(nil, env.New(env.MapLookup(map[string]string{"SEDNA_KB_TOKEN": "secret", "SEDNA_KB_COMPAT": "true"})))
	require.NoError(t, err)
	require.True(t, cfg.options.Compat)
	cfg, err = parseConfig([]string{"-compat", "false"}, env.New(env.MapLookup(map[string]string{"SEDNA_KB_COMPAT": "true", "SEDNA_KB_TOKEN": "secret"})))
	require.NoError(t, err)
	require.False(t, cfg.options.Compat, "the flag wins")

	cfg, err = parseConfig([]string{"-bind", "127.0.0.1:0"}, env.New(env.MapLookup(map[string]string{
		"KnowledgeBaseServer": "http://0.0.0.0:9021", "KnowledgeBasePath": "/kb", "SEDNA_KB_FILES": "s3://bucket/kb/",
		"S3_ENDPOINT_URL": "https://minio:9000", "ACCESS_KEY_ID": "ak", "SECRET_ACCESS_KEY": "sk",
		"SEDNA_KB_TOKEN": "w", "SEDNA_KB_READ_TOKEN": "r", "SEDNA_KB_COMPAT": "false", "SEDNA_KB_MAX_FILE_BYTES": "1024",
	})))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:0", cfg.bindAddr)
	require.Equal(t, "minio:9000", cfg.s3.Endpoint)
	require.True(t, cfg.s3.UseHTTPS)
	require.Equal(t, kb.Options{WriteToken: "w", ReadToken: "r", MaxFileBytes: 1024}, cfg.options)

	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"bad bind":           {map[string]string{"KnowledgeBaseServer": "9020"}, "want host:port"},
		"bad compat":         {map[string]string{"SEDNA_KB_COMPAT": "maybe"}, "not a boolean"},
		"s3 without creds":   {map[string]string{"SEDNA_KB_FILES": "s3://b/kb/", "S3_ENDPOINT_URL": "http://m:9000"}, "ACCESS_KEY_ID"},
		"s3 without scheme":  {map[string]string{"SEDNA_KB_FILES": "s3://b/kb/", "S3_ENDPOINT_URL": "m:9000"}, "S3_ENDPOINT_URL as http(s)"},
		"bad max file bytes": {map[string]string{"SEDNA_KB_MAX_FILE_BYTES": "lots"}, "not an integer"},
		"files = data dir":   {map[string]string{"KnowledgeBasePath": "/kb", "SEDNA_KB_FILES": "/kb/"}, "is or contains the data directory"},
		"files holds data":   {map[string]string{"KnowledgeBasePath": "/srv/kb/data", "SEDNA_KB_FILES": "/srv/kb"}, "is or contains the data directory"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig(nil, env.New(env.MapLookup(tc.env)))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// start runs the server on dir until the returned stop is called.
func start(t *testing.T, values map[string]string) (string, func()) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-bind", "127.0.0.1:0"}, env.MapLookup(values), ready) }()
	select {
	case address := <-ready:
		return "http://" + address, func() { cancel(); require.NoError(t, <-done) }
	case err := <-done:
		cancel()
		require.FailNow(t, "the server did not start", "%v", err)
		return "", nil
	}
}

func TestServesAndKeepsItsDataAcrossRestarts(t *testing.T) {
	values := map[string]string{"KnowledgeBasePath": t.TempDir(), "SEDNA_KB_TOKEN": "w", "SEDNA_KB_COMPAT": "false"}
	base, stop := start(t, values)
	var body bytes.Buffer
	writer := multipart.NewWriter(&body)
	part, err := writer.CreateFormFile("file", "model.bin")
	require.NoError(t, err)
	_, err = part.Write([]byte("weights"))
	require.NoError(t, err)
	require.NoError(t, writer.Close())

	post := func(token string) *http.Response {
		request, err := http.NewRequest(http.MethodPost, base+"/knowledgebase/file/upload", bytes.NewReader(body.Bytes()))
		require.NoError(t, err)
		request.Header.Set("Content-Type", writer.FormDataContentType())
		if token != "" {
			request.Header.Set("Authorization", "Bearer "+token)
		}
		response, err := http.DefaultClient.Do(request)
		require.NoError(t, err)
		_ = response.Body.Close()
		return response
	}
	require.Equal(t, http.StatusUnauthorized, post("").StatusCode)
	require.Equal(t, http.StatusOK, post("w").StatusCode)
	stop()

	base, stop = start(t, values)
	defer stop()
	request, err := http.NewRequest(http.MethodGet, base+"/knowledgebase/file/download?files=model.bin&name=model.bin", nil)
	require.NoError(t, err)
	request.Header.Set("Authorization", "Bearer w")
	response, err := http.DefaultClient.Do(request)
	require.NoError(t, err)
	defer func() { _ = response.Body.Close() }()
	content, err := io.ReadAll(response.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, response.StatusCode)
	require.Equal(t, "weights", string(content))
}

// A killed server leaves spooled uploads in scratch/ and, in the file directory, the temporary
// files of interrupted writes: both are removed at start; stored files are kept.
func TestStartRemovesLeftovers(t *testing.T) {
	dataDir := t.TempDir()
	for _, dir := range []string{"scratch", "files"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dataDir, dir), 0o750))
	}
	stale := []string{filepath.Join(dataDir, "scratch", "kb-upload-123"), filepath.Join(dataDir, "files", ".model.bin.tmp-0011223344556677")}
	for _, name := range stale {
		require.NoError(t, os.WriteFile(name, []byte("half"), 0o600))
	}
	kept := filepath.Join(dataDir, "files", "model.bin")
	require.NoError(t, os.WriteFile(kept, []byte("whole"), 0o600))
	_, stop := start(t, map[string]string{"KnowledgeBasePath": dataDir, "SEDNA_KB_TOKEN": "w"})
	stop()
	for _, name := range stale {
		_, err := os.Stat(name)
		require.ErrorIs(t, err, os.ErrNotExist, name)
	}
	require.FileExists(t, kept)
}
