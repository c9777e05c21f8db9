package storage

import (
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/sedna-go/sedna/pkg/localcontroller/storage/s3test"
)

// testS3 is a real S3 server (versitygw over a posix directory) for one test.
type testS3 struct {
	creds  Credentials
	bucket string
	// admin talks to the server directly, to arrange and check objects behind the Client's back.
	admin  *minio.Client
	server *s3test.Server
}

// startS3 starts a real S3 server with a fresh bucket for one test.
func startS3(t *testing.T) *testS3 {
	t.Helper()
	server := s3test.Start(t, "sedna-test")
	return &testS3{
		creds:  Credentials{Endpoint: server.Endpoint, AccessKeyID: server.AccessKey, SecretAccessKey: server.SecretKey},
		bucket: server.Bucket,
		admin:  server.Admin,
		server: server,
	}
}

func (s *testS3) put(t *testing.T, key, content string) { s.server.Put(t, key, content) }
func (s *testS3) get(t *testing.T, key string) string   { return s.server.Get(t, key) }
func (s *testS3) url(key string) string                 { return s.server.URL(key) }
