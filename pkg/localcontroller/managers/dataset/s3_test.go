package dataset

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage/s3test"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// s3Server is a real S3 server (versitygw over a directory) for one test.
type s3Server struct {
	*s3test.Server
}

const testBucket = "datasets"

func startS3(t *testing.T) *s3Server {
	t.Helper()
	return &s3Server{s3test.Start(t, testBucket)}
}

func (s *s3Server) put(t *testing.T, key, content string) { s.Put(t, key, content) }

// secretObject is the content GM sends for a Secret: annotations, and data base64-encoded.
func (s *s3Server) secretObject(t *testing.T, secretKey string) []byte {
	t.Helper()
	object, err := json.Marshal(map[string]any{
		"annotations": map[string]string{storage.AnnotationEndpoint: s.Endpoint, storage.AnnotationUseHTTPS: "0"},
		"data":        map[string][]byte{storage.DataAccessKeyID: []byte(s.AccessKey), storage.DataSecretAccessKey: []byte(secretKey)},
	})
	require.NoError(t, err)
	return object
}

func (l *lc) putSecret(name string, object []byte) {
	l.t.Helper()
	l.version++
	_, err := l.st.PutResource(store.Resource{Key: store.ResourceKey{Kind: SecretKind, Namespace: testNamespace, Name: name}, Version: l.version, Object: object})
	require.NoError(l.t, err)
}

func s3Spec(key string) sednav1.DatasetSpec {
	return sednav1.DatasetSpec{URL: "s3://" + testBucket + "/" + key, Format: "txt", NodeName: "edge-1", CredentialName: "minio"}
}

func TestS3DatasetIsCountedWithTheSecretsCredentials(t *testing.T) {
	server := startS3(t)
	l := startLC(t, newNode(t), nil)
	l.run()
	server.put(t, "helmet/train.txt", "a.jpg\nb.jpg\nc.jpg\n")
	l.putSecret("minio", server.secretObject(t, server.SecretKey))
	l.putDataset("helmet", s3Spec("helmet/train.txt"))

	require.Equal(t, []Report{count(3)}, l.waitReports(1))
	l.waitPasses("helmet", 2)
	require.Len(t, l.reporter.Reports(), 1)

	server.put(t, "helmet/train.txt", "a.jpg\nb.jpg\nc.jpg\nd.jpg\ne.jpg\n")
	require.Equal(t, []Report{count(3), count(5)}, l.waitReports(2))

	entries, err := os.ReadDir(l.m.opts.ScratchDir)
	require.NoError(t, err)
	require.Empty(t, entries, "scratch copies are removed after counting")
}

func TestS3DatasetProblems(t *testing.T) {
	server := startS3(t)
	server.put(t, "big.txt", "sample-000.jpg\nsample-001.jpg\nsample-002.jpg\n")
	tests := map[string]struct {
		key         string
		secret      func() []byte
		tweak       func(*Options)
		wantReason  string
		wantMessage string
	}{
		"object missing": {
			key:         "missing.txt",
			secret:      func() []byte { return server.secretObject(t, server.SecretKey) },
			wantReason:  ReasonIndexNotFound,
			wantMessage: "s3://datasets/missing.txt",
		},
		"object above the size limit": {
			key:         "big.txt",
			secret:      func() []byte { return server.secretObject(t, server.SecretKey) },
			tweak:       func(o *Options) { o.MaxS3Bytes = 16 },
			wantReason:  ReasonIndexTooLarge,
			wantMessage: "limit 16",
		},
		"wrong secret key": {
			key:         "big.txt",
			secret:      func() []byte { return server.secretObject(t, "not-the-key") },
			wantReason:  ReasonReadFailed,
			wantMessage: "s3://datasets/big.txt",
		},
		"secret without endpoint": {
			key: "big.txt",
			secret: func() []byte {
				return []byte(`{"annotations":{},"data":{"ACCESS_KEY_ID":"QUs=","SECRET_ACCESS_KEY":"U0s="}}`)
			},
			wantReason:  ReasonReadFailed,
			wantMessage: `annotation "s3-endpoint" is missing`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := startLC(t, newNode(t), tc.tweak)
			l.run()
			l.putSecret("minio", tc.secret())
			l.putDataset("broken", s3Spec(tc.key))

			reports := l.waitReports(1)
			l.waitPasses("broken", 2)
			require.Len(t, l.reporter.Reports(), 1, "reports: %q", l.reporter.Contents())
			require.NotNil(t, reports[0].Condition)
			require.Equal(t, tc.wantReason, reports[0].Condition.Reason)
			require.Contains(t, reports[0].Condition.Message, tc.wantMessage)
			require.NotContains(t, reports[0].Condition.Message, server.SecretKey)
		})
	}
}

func TestS3CredentialsFollowTheSecret(t *testing.T) {
	server := startS3(t)
	server.put(t, "train.txt", "a\nb\n")
	l := startLC(t, newNode(t), nil)
	l.run()
	l.putSecret("minio", server.secretObject(t, "wrong"))
	l.putDataset("rotated", s3Spec("train.txt"))
	require.Equal(t, ReasonReadFailed, l.waitReports(1)[0].Condition.Reason)

	// GM sends the corrected Secret: the monitor picks it up without a Dataset change.
	l.putSecret("minio", server.secretObject(t, server.SecretKey))
	require.Equal(t, count(2), l.waitReports(2)[1])
}

// TestS3ObjectReplacedWhileReadIsReadAgain needs an answer versitygw gives only by chance: the
// PreconditionFailed of an object replaced between the S3 client's requests. A stand-in server
// gives it once, then serves the new version; the monitor must count that version, not report
// a problem.
func TestS3ObjectReplacedWhileReadIsReadAgain(t *testing.T) {
	var (
		mu            sync.Mutex
		objectGets    int
		preconditions int
	)
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("location") {
			_, _ = io.WriteString(w, `<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>`)
			return
		}
		mu.Lock()
		objectGets++
		first := objectGets == 1
		if first {
			preconditions++
		}
		mu.Unlock()
		if first {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusPreconditionFailed)
			_, _ = io.WriteString(w, `<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold.</Message></Error>`)
			return
		}
		content := "a\nb\nc\nd\n"
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Header().Set("ETag", `"v2"`)
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		_, _ = io.WriteString(w, content)
	}))
	t.Cleanup(stub.Close)

	l := startLC(t, newNode(t), nil)
	l.run()
	secret, err := json.Marshal(map[string]any{
		"annotations": map[string]string{storage.AnnotationEndpoint: strings.TrimPrefix(stub.URL, "http://"), storage.AnnotationUseHTTPS: "0"},
		"data":        map[string][]byte{storage.DataAccessKeyID: []byte("AK"), storage.DataSecretAccessKey: []byte("SK")},
	})
	require.NoError(t, err)
	l.putSecret("minio", secret)
	l.putDataset("replaced", s3Spec("train.txt"))

	require.Equal(t, []Report{count(4)}, l.waitReports(1))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, preconditions)
}
