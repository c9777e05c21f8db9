// Package s3test starts a real S3 server for tests: versitygw over a posix directory, built by
// hack/install-test-binaries.sh into _output/bin (or named by SEDNA_VERSITYGW). A missing binary
// fails the test rather than skipping it: these tests are the evidence that the S3 paths work.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"
)

// Server is one versitygw with its own root credentials and one bucket, stopped when the test ends.
type Server struct {
	Endpoint, AccessKey, SecretKey, Bucket string
	// Admin talks to the server directly, to arrange and check objects behind the tested code's back.
	Admin *minio.Client
}

// Binary returns the versitygw binary the tests use.
func Binary() string {
	if fromEnv := os.Getenv("SEDNA_VERSITYGW"); fromEnv != "" {
		return fromEnv
	}
	_, thisFile, _, _ := runtime.Caller(0)
	// This file is pkg/localcontroller/storage/s3test/s3test.go.
	return filepath.Join(filepath.Dir(thisFile), "..", "..", "..", "..", "_output", "bin", "versitygw")
}

// Start starts versitygw on a free loopback port with random credentials and creates bucket.
func Start(t testing.TB, bucket string) *Server {
	t.Helper()
	binary := Binary()
	if _, err := os.Stat(binary); err != nil {
		require.FailNowf(t, "versitygw not found",
			"%v\nrun `make install-test-binaries` (or set SEDNA_VERSITYGW to a versitygw binary)", err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &Server{
		Endpoint:  "127.0.0.1:" + strconv.Itoa(listener.Addr().(*net.TCPAddr).Port),
		AccessKey: "AK" + randomHex(t, 8),
		SecretKey: randomHex(t, 20),
		Bucket:    bucket,
	}
	// Another process could take the port before versitygw binds it; Start then fails with the
	// server's own "address in use" message.
	require.NoError(t, listener.Close())

	output := &lockedBuffer{}
	cmd := exec.Command(binary, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--port", s.Endpoint, "--quiet", "posix", t.TempDir())
	cmd.Stdout, cmd.Stderr = output, output
	require.NoError(t, cmd.Start(), "starting %s", binary)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // the process may already be gone
		select {
		case <-exited: //nolint:errcheck // a stopped server's exit status says nothing
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill() // stuck on shutdown; the test is over either way
			<-exited               //nolint:errcheck // killed: its exit status says nothing
		}
	})

	// minio-go's retries stay on: a request can meet a keep-alive connection the server has just
	// closed, and a PUT is not retried by net/http itself.
	s.Admin, err = minio.New(s.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), MaxRetries: 3,
	})
	require.NoError(t, err)
	// Ready means it answers an authenticated S3 call, not merely that the port is open.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, listErr := s.Admin.ListBuckets(ctx)
		cancel()
		if listErr == nil {
			break
		}
		select {
		case waitErr := <-exited:
			require.FailNowf(t, "versitygw exited", "%v\n%s", waitErr, output.String())
		default:
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "versitygw did not become ready", "last error: %v\n%s", listErr, output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, s.Admin.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}))
	return s
}

// Put writes an object through the admin client.
func (s *Server) Put(t testing.TB, key, content string) {
	t.Helper()
	_, err := s.Admin.PutObject(context.Background(), s.Bucket, key, bytes.NewReader([]byte(content)), int64(len(content)),
		minio.PutObjectOptions{})
	require.NoError(t, err, "putting %s", key)
}

// Get reads an object through the admin client.
func (s *Server) Get(t testing.TB, key string) string {
	t.Helper()
	object, err := s.Admin.GetObject(context.Background(), s.Bucket, key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer func() { _ = object.Close() }()
	var content bytes.Buffer
	_, err = content.ReadFrom(object)
	require.NoError(t, err, "reading %s", key)
	return content.String()
}

// URL returns the s3:// URL of key in the bucket.
func (s *Server) URL(key string) string { return "s3://" + s.Bucket + "/" + key }

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// lockedBuffer collects the server's output; exec writes to it from its own goroutine while a
// failing test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
