package incrementallearning

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/model"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage/s3test"
)

const s3Bucket = "ilbucket"

// putSecret stores the credential Secret name as GM sends it, with secretKey as its secret key.
func (l *lc) putSecret(server *s3test.Server, name, secretKey string) {
	l.t.Helper()
	object, err := json.Marshal(map[string]any{
		"annotations": map[string]string{storage.AnnotationEndpoint: server.Endpoint, storage.AnnotationUseHTTPS: "0"},
		"data":        map[string][]byte{storage.DataAccessKeyID: []byte(server.AccessKey), storage.DataSecretAccessKey: []byte(secretKey)},
	})
	require.NoError(l.t, err)
	l.put(SecretKind, name, json.RawMessage(object))
}

// setupS3 stores a Dataset whose index is on S3, the initial model on the host, the deploy
// Model at deployURL and the job, whose outputDir is on S3; all S3 access uses the Secret "minio".
func (l *lc) setupS3(server *s3test.Server, job *sednav1.IncrementalLearningJob, deployURL string) {
	l.putSecret(server, "minio", server.SecretKey)
	l.put(DatasetKind, "helmet", sednav1.Dataset{ObjectMeta: metav1.ObjectMeta{Name: "helmet"},
		Spec: sednav1.DatasetSpec{URL: server.URL("ds/index.txt"), Format: "txt", NodeName: "edge-1", CredentialName: "minio"}})
	for name, url := range map[string]string{"initial": "/data/models/initial/model.pb", "deploy": deployURL} {
		r := l.put(model.Kind, name, sednav1.Model{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace}, Spec: sednav1.ModelSpec{URL: url, Format: "pb"}})
		l.models.ResourceChanged(context.Background(), r)
	}
	job.Spec.OutputDir = "s3://" + s3Bucket + "/out"
	job.Spec.CredentialName = "minio"
	l.publish(job)
}

func samples(first, count int) string {
	var b strings.Builder
	for i := first; i < first+count; i++ {
		b.WriteString("images/" + itoa(i) + ".jpg 1\n")
	}
	return b.String()
}

// TestARoundWithItsDataOnS3: the index is read from S3, the round's data files are written to S3
// under outputDir, and the trained model on S3 replaces the deploy Model's object on S3.
func TestARoundWithItsDataOnS3(t *testing.T) {
	server := s3test.Start(t, s3Bucket)
	server.Put(t, "ds/index.txt", samples(0, 10))
	server.Put(t, "models/deploy/model.pb", "deployed-0")
	n := newNode(t)
	l := startLC(t, n)
	l.setupS3(server, newJob(false), server.URL("models/deploy/model.pb"))
	l.run()

	l.waitForState("Train/Ready#1")
	ready := l.stageReports()[0]
	require.Nil(t, ready.Problem)
	require.Equal(t, &StageInput{
		Models:    []ModelRef{{Format: "pb", URL: "/data/models/initial/model.pb"}},
		DataURL:   "s3://ilbucket/out/data/train/1/data.txt",
		OutputDir: "s3://ilbucket/out/train/1",
	}, ready.Input)
	require.Equal(t, samples(0, 8), server.Get(t, "out/data/train/1/data.txt"))

	server.Put(t, "out/train/1/model.pb", "trained-1")
	require.NoError(t, l.post(trainCompletedMessage("s3://ilbucket/out/train/1/model.pb")))
	require.Equal(t, []string{"Train/Ready#1", "Train/Completed#1", "Eval/Ready#1"}, l.states())
	require.Equal(t, "s3://ilbucket/out/data/eval/1/data.txt", l.stageReports()[2].Input.DataURL)
	require.Equal(t, samples(8, 2), server.Get(t, "out/data/eval/1/data.txt"))

	require.NoError(t, l.post(evalCompletedMessage(0.9, 0.8)))
	l.waitForState("Train/Waiting#1")
	require.Contains(t, l.states(), "Deploy/Completed#1")
	require.Equal(t, "trained-1", server.Get(t, "models/deploy/model.pb"))
}

// TestAModelTrainedOnS3IsHotUpdatedOnTheHost: the hot-update directory is on the host, the
// trained model is read from S3 into it.
func TestAModelTrainedOnS3IsHotUpdatedOnTheHost(t *testing.T) {
	server := s3test.Start(t, s3Bucket)
	server.Put(t, "ds/index.txt", samples(0, 10))
	n := newNode(t)
	l := startLC(t, n)
	l.setupS3(server, newJob(true), "/data/models/deploy/model.pb")
	l.run()
	l.waitForState("Train/Ready#1")
	server.Put(t, "out/train/1/model.pb", "trained-1")
	require.NoError(t, l.post(trainCompletedMessage("s3://ilbucket/out/train/1/model.pb")))
	require.NoError(t, l.post(evalCompletedMessage(0.9, 0.8)))
	l.waitForState("Train/Waiting#1")
	require.Equal(t, "trained-1", n.readFile(t, hotUpdateDir+"/model.pb"))
	require.Contains(t, n.readFile(t, hotUpdateDir+"/model_config.json"), `"/model-hot-update/model.pb"`)
}

// TestAnS3OutputThatRefusesTheCredentialsIsAProblem: the upload fails, the job keeps its state and
// tells GM, naming the URL; with the right key in the Secret the round starts.
func TestAnS3OutputThatRefusesTheCredentialsIsAProblem(t *testing.T) {
	server := s3test.Start(t, s3Bucket)
	server.Put(t, "ds/index.txt", samples(0, 10))
	n := newNode(t)
	l := startLC(t, n)
	l.fastRetries()
	job := newJob(false)
	l.setupS3(server, job, "/data/models/deploy/model.pb")
	// The Dataset reads with its own Secret; the job's output uses a Secret with a wrong key.
	l.putSecret(server, "output", "not-the-key")
	job.Spec.CredentialName = "output"
	r := l.put(Kind, testJob, job)
	l.m.ResourceChanged(context.Background(), r)
	l.put(DatasetKind, "helmet", sednav1.Dataset{ObjectMeta: metav1.ObjectMeta{Name: "helmet"},
		Spec: sednav1.DatasetSpec{URL: server.URL("ds/index.txt"), Format: "txt", NodeName: "edge-1", CredentialName: "minio"}})
	l.run()

	l.waitForState("Train/Waiting#0")
	problem := l.stageReports()[0].Problem
	require.NotNil(t, problem)
	require.Equal(t, ReasonOutputNotWritable, problem.Reason)
	require.Contains(t, problem.Message, "s3://ilbucket/out/data/train/1/data.txt")
	require.NotContains(t, problem.Message, "not-the-key")
	require.Equal(t, State{Stage: sednav1.StageTrain, StageState: sednav1.StageWaiting}, l.savedRecord().State)

	l.putSecret(server, "output", server.SecretKey)
	l.waitForState("Train/Ready#1")
	reports := l.stageReports()
	require.Nil(t, reports[len(reports)-1].Problem)
	require.Equal(t, samples(0, 8), server.Get(t, "out/data/train/1/data.txt"))
}

func TestAnS3OutputDirNeedsACredential(t *testing.T) {
	job := newJob(false)
	job.Spec.OutputDir = "s3://ilbucket/out"
	_, err := parseJob(job)
	require.ErrorContains(t, err, "spec.outputDir s3://ilbucket/out is on S3 but spec.credentialName names no Secret")
	job.Spec.OutputDir = "s3:///out"
	job.Spec.CredentialName = "minio"
	_, err = parseJob(job)
	require.ErrorContains(t, err, "empty bucket")
}
