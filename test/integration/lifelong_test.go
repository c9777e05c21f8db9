package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/test/integration/framework"
)

// fakeLC is an LC on the channel that acknowledges what GM sends and posts stage reports.
type fakeLC struct {
	t   *testing.T
	ws  *websocket.Conn
	seq uint64
	// jobs are the lifelong learning jobs GM sent, by name.
	jobs map[string]*channel.Frame
}

// readOne reads one frame, acknowledging GM's deliveries.
func (lc *fakeLC) readOne() *channel.Frame {
	f := readFrame(lc.t, lc.ws)
	if f.Header.Operation != channel.OpAck {
		writeFrame(lc.t, lc.ws, channel.Frame{Header: channel.Header{Operation: channel.OpAck}, Ack: f.Seq})
	}
	if f.Header.ResourceKind == "lifelonglearningjob" && f.Header.Operation == channel.OpInsert {
		lc.jobs[f.Header.ResourceName] = f
	}
	return f
}

// waitForJob reads frames until GM has sent the named job.
func (lc *fakeLC) waitForJob(name string) {
	lc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for lc.jobs[name] == nil {
		require.True(lc.t, time.Now().Before(deadline), "GM never sent lifelong learning job %s", name)
		lc.readOne()
	}
}

// report posts a stage report about ns/name and waits for GM's acknowledgement.
func (lc *fakeLC) report(ns, name string, content map[string]any) {
	lc.t.Helper()
	data, err := json.Marshal(content)
	require.NoError(lc.t, err)
	lc.seq++
	writeFrame(lc.t, lc.ws, channel.Frame{
		Header:  channel.Header{Namespace: ns, ResourceKind: "lifelonglearningjob", ResourceName: name, Operation: channel.OpStatus},
		Content: data, Seq: lc.seq,
	})
	for {
		f := lc.readOne()
		if f.Header.Operation == channel.OpAck && f.Ack == lc.seq {
			require.Empty(lc.t, f.Error, "GM refused the report")
			return
		}
	}
}

func podEnv(pod *corev1.Pod, container int) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range pod.Spec.Containers[container].Env {
		out[e.Name] = e
	}
	return out
}

// TestLifelongLearningUpstreamSamples applies upstream's lifelong learning samples (the atcii
// example and the robot/cityscapes example), lets a GM serve them and drives one round with the
// stage reports an LC sends: the stage pods and the inference worker carry the env upstream's
// library reads, and status.knowledgeBase has upstream's shape (capitalised keys).
func TestLifelongLearningUpstreamSamples(t *testing.T) {
	dir := t.TempDir()
	cert, err := framework.WriteServingCert(dir, "127.0.0.1")
	require.NoError(t, err)
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("ll-edge-token,edge-node\nll-data-token,data-node\n"), 0o600))
	ctx := context.Background()
	for _, node := range []string{"edge-node", "data-node"} {
		_, err = controlPlane.Kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{})
		if err != nil && !isAlreadyExists(err) {
			require.NoError(t, err)
		}
	}
	gm := startGM(t, dir, "gm-ll", tokens, cert)
	require.Eventually(t, func() bool { return leaseHolder(t) == "gm-ll" }, 60*time.Second, 100*time.Millisecond)

	cases := []struct {
		fixture, job, token, datasetURL, out string
	}{
		{"example-ll-atcii.yaml", "atcii-classifier-demo", "ll-edge-token", "/data/trainData.csv", "/output"},
		{"example-ll-cityscapes.yaml", "robo-job", "ll-data-token", "/data/robo/train_data/index.txt", "/output/robo-job"},
	}
	for _, tc := range cases {
		t.Run(tc.job, func(t *testing.T) {
			ns := newNamespace(t)
			for _, obj := range loadUpstreamFixture(t, tc.fixture) {
				_, err := controlPlane.Dynamic.Resource(upstreamResource(t, obj)).Namespace(ns).Create(ctx, obj,
					metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
				require.NoError(t, err, "%s %s refused", obj.GetKind(), obj.GetName())
			}
			var ws *websocket.Conn
			require.Eventually(t, func() bool {
				ws, err = dialLC(t, cert, gm.channelPort, tc.token)
				return err == nil
			}, 30*time.Second, 100*time.Millisecond)
			defer func() { _ = ws.Close() }()
			lc := &fakeLC{t: t, ws: ws, jobs: map[string]*channel.Frame{}}
			lc.waitForJob(tc.job)
			var sent sednav1.LifelongLearningJob
			require.NoError(t, json.Unmarshal(lc.jobs[tc.job].Content, &sent))
			require.Equal(t, "LifelongLearningJob", sent.Kind)

			jobs := controlPlane.Sedna.SednaV1alpha1().LifelongLearningJobs(ns)
			t.Cleanup(func() {
				if !t.Failed() {
					return
				}
				// What GM made of the reports, to tell a lost report from a refused input.
				if got, err := jobs.Get(ctx, tc.job, metav1.GetOptions{}); err == nil {
					status, _ := json.MarshalIndent(got.Status, "", "  ")
					t.Logf("status of %s/%s:\n%s", ns, tc.job, status)
				}
			})
			pods := controlPlane.Kube.CoreV1().Pods(ns)
			getPod := func(name string) *corev1.Pod {
				var pod *corev1.Pod
				require.Eventually(t, func() bool {
					pod, err = pods.Get(ctx, name, metav1.GetOptions{})
					return err == nil
				}, 30*time.Second, 100*time.Millisecond, "GM did not create pod %s", name)
				return pod
			}

			// Round 1: the train trigger fired on the LC.
			lc.report(ns, tc.job, map[string]any{"phase": "Train", "status": "Ready", "round": 1, "input": map[string]any{
				"dataURL": tc.out + "/data/train/1/data.csv", "outputDir": tc.out + "/train/1"}})
			train := getPod(tc.job + "-train-1")
			env := podEnv(train, 0)
			require.Equal(t, ns, env["NAMESPACE"].Value)
			require.Equal(t, tc.job, env["JOB_NAME"].Value)
			require.Equal(t, "metadata.name", env["WORKER_NAME"].ValueFrom.FieldRef.FieldPath)
			require.Contains(t, env["LC_SERVER"].Value, ":9100")
			require.Equal(t, "http://kb.sedna:9020", env["KB_SERVER"].Value, "upstream's default KB")
			require.Equal(t, "false", env["HAS_COMPLETED_INITIAL_TRAINING"].Value)
			require.NotContains(t, env, "CLOUD_KB_INDEX")
			require.Equal(t, "/home/data"+tc.out+"/train/1/", env["OUTPUT_URL"].Value)
			require.Equal(t, "/home/data"+tc.out+"/data/train/1/data.csv", env["TRAIN_DATASET_URL"].Value)
			require.Equal(t, "/home/data"+tc.datasetURL, env["ORIGINAL_DATASET_URL"].Value)
			require.Equal(t, "train-worker", train.Spec.Containers[0].Name, "the template's container")
			require.Equal(t, "train", train.Labels["lifelonglearningjob.sedna.io/worker-type"])
			require.Equal(t, sent.Spec.TrainSpec.Template.Spec.NodeName, train.Spec.NodeName, "placement stays the template's")
			if policy := sent.Spec.TrainSpec.Template.Spec.DNSPolicy; policy != "" {
				require.Equal(t, policy, train.Spec.DNSPolicy, "the template's DNS policy")
			}

			kbIndex := "http://kb.sedna:9020/knowledgebase/file/download?files=index.pkl&name=index.pkl"
			lc.report(ns, tc.job, map[string]any{"phase": "Train", "status": "Completed", "round": 1, "output": map[string]any{
				"models": []map[string]any{{"format": "pkl", "url": kbIndex, "classes": []string{"road", "sidewalk"},
					"current_metric":                  map[string]map[string]float64{"task-a": {"precision_score": 0.75}},
					"number_of_labeled_unseen_sample": 12}}}})
			require.Eventually(t, func() bool {
				got, err := jobs.Get(ctx, tc.job, metav1.GetOptions{})
				return err == nil && got.Status.KnowledgeBase != nil
			}, 30*time.Second, 100*time.Millisecond, "status.knowledgeBase was not written")
			raw, err := controlPlane.Dynamic.Resource(caseFor(t, "LifelongLearningJob").gvr()).Namespace(ns).Get(ctx, tc.job, metav1.GetOptions{})
			require.NoError(t, err)
			kb, found, err := unstructured.NestedMap(raw.Object, "status", "knowledgeBase")
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, map[string]any{
				"AIModels": map[string]any{"numberOfAIModels": int64(1), "listOfAIModels": []any{
					map[string]any{"modelID": "task-a", "averagePrecision": 0.75, "numberOfTrainSamples": int64(12)}}},
				"AIClasses": map[string]any{"numberOfAIClasses": int64(2), "listOfAIClasses": []any{"road", "sidewalk"}},
				"samples":   map[string]any{"numberOfLabeledUnseenSample": int64(12), "numberOfUnseenSample": int64(0)},
			}, kb, "upstream's knowledgeBase shape")

			lc.report(ns, tc.job, map[string]any{"phase": "Eval", "status": "Ready", "round": 1, "input": map[string]any{
				"models": []map[string]any{{"format": "pkl", "url": kbIndex}}, "dataURL": tc.out + "/data/eval/1/data.csv",
				"outputDir": tc.out + "/eval/1"}})
			env = podEnv(getPod(tc.job+"-eval-1"), 0)
			require.Equal(t, kbIndex, env["MODEL_URLS"].Value)
			require.Equal(t, "/home/data"+tc.out+"/eval/1/", env["OUTPUT_URL"].Value)
			require.Equal(t, "/home/data"+tc.out+"/data/eval/1/data.csv", env["TEST_DATASET_URL"].Value)
			require.Equal(t, "http://kb.sedna:9020", env["KB_SERVER"].Value)

			lc.report(ns, tc.job, map[string]any{"phase": "Eval", "status": "Completed", "round": 1})
			lc.report(ns, tc.job, map[string]any{"phase": "Deploy", "status": "Completed", "round": 1,
				"roundResult": map[string]any{"round": 1, "stage": "Deploy", "model": kbIndex, "deployed": true}})
			deployments := controlPlane.Kube.AppsV1().Deployments(ns)
			require.Eventually(t, func() bool {
				_, err := deployments.Get(ctx, tc.job+"-deployment-inference", metav1.GetOptions{})
				return err == nil
			}, 30*time.Second, 100*time.Millisecond, "the deployed round did not start the inference worker")
			d, err := deployments.Get(ctx, tc.job+"-deployment-inference", metav1.GetOptions{})
			require.NoError(t, err)
			inferEnv := map[string]string{}
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				inferEnv[e.Name] = e.Value
			}
			require.Equal(t, "/home/data"+tc.out+"/deploy/index.pkl", inferEnv["MODEL_URLS"])
			require.Equal(t, "/home/data"+tc.out+"/", inferEnv["OUTPUT_URL"])
			require.Equal(t, "infer-worker", d.Spec.Template.Spec.Containers[0].Name)

			// The Deployment is created in the sync that writes the status: wait for the write.
			var got *sednav1.LifelongLearningJob
			require.Eventually(t, func() bool {
				got, err = jobs.Get(ctx, tc.job, metav1.GetOptions{})
				return err == nil && got.Status.Stage == sednav1.StageDeploy
			}, 30*time.Second, 100*time.Millisecond, "the deploy report did not reach the status")
			require.Equal(t, sednav1.StageCompleted, got.Status.StageState)
			require.Equal(t, int32(1), got.Status.Round)
			require.Len(t, got.Status.Rounds, 1)
			_, err = pods.Get(ctx, tc.job+"-train-2", metav1.GetOptions{})
			require.True(t, apierrors.IsNotFound(err))
		})
	}
}
