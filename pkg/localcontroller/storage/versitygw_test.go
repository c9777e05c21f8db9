package storage

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

// testS3 is a real S3 server (versitygw over a posix directory) for one test.
type testS3 struct {
	creds  Credentials
	bucket string
	// admin talks to the server directly, to arrange and check objects behind the Client's back.
	admin *minio.Client
}

// versitygwBinary finds the binary hack/install-test-binaries.sh builds.
func versitygwBinary(t *testing.T) string {
	t.Helper()
	if fromEnv := os.Getenv("SEDNA_VERSITYGW"); fromEnv != "" {
		return fromEnv
	}
	_, thisFile, _, ok := runtime.Caller(0)
	require.True(t, ok, "cannot locate the test source file")
	// This file is pkg/localcontroller/storage/versitygw_test.go.
	repoRoot := filepath.Join(filepath.Dir(thisFile), "..", "..", "..")
	return filepath.Join(repoRoot, "_output", "bin", "versitygw")
}

// startS3 starts versitygw on a free loopback port with fresh random root credentials and a fresh
// bucket, and stops it when the test ends. A missing binary fails the test: these tests are the
// only evidence that the S3 paths work, so they must not quietly disappear.
func startS3(t *testing.T) *testS3 {
	t.Helper()
	binary := versitygwBinary(t)
	if _, err := os.Stat(binary); err != nil {
		require.FailNowf(t, "versitygw not found",
			"%v\nrun `make install-test-binaries` (or set SEDNA_VERSITYGW to a versitygw binary)", err)
	}

	creds := Credentials{
		Endpoint:        "127.0.0.1:" + strconv.Itoa(freePort(t)),
		AccessKeyID:     "AK" + randomHex(t, 8),
		SecretAccessKey: randomHex(t, 20),
	}
	root := t.TempDir()
	output := &lockedBuffer{}
	cmd := exec.Command(binary,
		"--access", creds.AccessKeyID, "--secret", creds.SecretAccessKey,
		"--port", creds.Endpoint, "--quiet",
		"posix", root)
	cmd.Stdout = output
	cmd.Stderr = output
	require.NoError(t, cmd.Start(), "starting %s", binary)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // the process may already be gone
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill() // stuck on shutdown; the test is over either way
			<-exited
		}
	})

	admin, err := minio.New(creds.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(creds.AccessKeyID, creds.SecretAccessKey, ""),
		MaxRetries: 1,
	})
	require.NoError(t, err)

	// Ready means it answers an authenticated S3 call, not merely that the port is open.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, listErr := admin.ListBuckets(ctx)
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

	bucket := "sedna-test"
	require.NoError(t, admin.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}))
	return &testS3{creds: creds, bucket: bucket, admin: admin}
}

// put writes an object directly through the admin client.
func (s *testS3) put(t *testing.T, key, content string) {
	t.Helper()
	_, err := s.admin.PutObject(context.Background(), s.bucket, key, bytes.NewReader([]byte(content)), int64(len(content)),
		minio.PutObjectOptions{})
	require.NoError(t, err, "putting %s", key)
}

// get reads an object directly through the admin client.
func (s *testS3) get(t *testing.T, key string) string {
	t.Helper()
	object, err := s.admin.GetObject(context.Background(), s.bucket, key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer func() { _ = object.Close() }()
	var content bytes.Buffer
	_, err = content.ReadFrom(object)
	require.NoError(t, err, "reading %s", key)
	return content.String()
}

// url returns the s3:// URL of key in the test bucket.
func (s *testS3) url(key string) string { return "s3://" + s.bucket + "/" + key }

// freePort asks the kernel for an unused port. Another process could take it before versitygw
// binds it; on a test machine that race is rare enough, and startS3 then fails with the server's
// own "address in use" message.
func freePort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := listener.Addr().(*net.TCPAddr).Port
	require.NoError(t, listener.Close())
	return port
}

func randomHex(t *testing.T, n int) string {
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
