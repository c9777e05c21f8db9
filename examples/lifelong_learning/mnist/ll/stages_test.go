package ll

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
	"github.com/sedna-go/sedna/pkg/sdk/lifelong"
)

type reports struct {
	mu       sync.Mutex
	messages []lc.Message
}

func (r *reports) Report(_ context.Context, msg lc.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, msg)
	return nil
}

func writeRows(t *testing.T, file string, rows []Row) {
	content, err := encodeRows(rows)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, content, 0o644))
}

func idxRows(first, n, rotation int, labels []uint8) []Row {
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = Row{Ref: fmt.Sprintf("train-images-idx3-ubyte.gz:%d", first+i), Label: int(labels[first+i]), Rotation: rotation}
	}
	return rows
}

// TestStagesWithAKnowledgeBase runs the train, eval and inference workers' code against a real
// knowledge base: round 1 learns 0°, round 2 adds 90° and keeps 0°'s model, eval measures both
// through task allocation, and the inference worker routes each rotation to its model and
// keeps answering once the knowledge base is gone.
func TestStagesWithAKnowledgeBase(t *testing.T) {
	mnistDir, err := model.DefaultMNISTDir()
	require.NoError(t, err)
	train, err := model.LoadTrain(mnistDir)
	require.NoError(t, err)
	store := il.NewStore(mnistDir, mnistDir)

	kbDir := t.TempDir()
	files, err := kb.NewDirStore(filepath.Join(kbDir, "files"))
	require.NoError(t, err)
	kbStore, err := kb.OpenStore(kbDir, files)
	require.NoError(t, err)
	defer func() { _ = kbStore.Close() }()
	kbServer, err := kb.NewServer(kb.Options{Store: kbStore, WriteToken: "w", ReadToken: "r", ScratchDir: t.TempDir(), Logger: logr.Discard()})
	require.NoError(t, err)
	server := httptest.NewServer(kbServer)
	defer server.Close()

	work := t.TempDir()
	ctx := context.Background()
	sent := &reports{}
	newWorker := func(values map[string]string) *lifelong.Worker {
		values["KB_SERVER"] = server.URL
		worker, err := lifelong.NewWorker(lifelong.Options{Reporter: sent, Env: env.New(env.MapLookup(values))})
		require.NoError(t, err)
		return worker
	}

	// Round 1: upright digits.
	writeRows(t, filepath.Join(work, "train1.csv"), idxRows(0, 1000, 0, train.Labels))
	first, err := Train(ctx, newWorker(map[string]string{"SEDNA_KB_TOKEN": "w", "TRAIN_DATASET_URL": filepath.Join(work, "train1.csv"), "OUTPUT_URL": filepath.Join(work, "train", "1")}), store)
	require.NoError(t, err)
	require.Equal(t, []string{"rotation-0"}, first.NewTasks)
	require.Equal(t, 1000, first.Labeled)

	// Round 2: the labelled unseen samples (90°) and a few 0° false positives.
	writeRows(t, filepath.Join(work, "train2.csv"), append(idxRows(1000, 1000, 90, train.Labels), idxRows(2000, 50, 0, train.Labels)...))
	second, err := Train(ctx, newWorker(map[string]string{"SEDNA_KB_TOKEN": "w", "TRAIN_DATASET_URL": filepath.Join(work, "train2.csv"),
		"OUTPUT_URL": filepath.Join(work, "train", "2"), "HAS_COMPLETED_INITIAL_TRAINING": "true", "CLOUD_KB_INDEX": first.Published.KBURL}), store)
	require.NoError(t, err)
	require.Equal(t, []string{"rotation-90"}, second.NewTasks)
	require.Equal(t, []string{"rotation-0"}, second.Skipped)
	require.Equal(t, []string{"rotation-0", "rotation-90"}, second.Published.Index.TaskIDs())
	require.Equal(t, first.Published.Index.Tasks[0].Model.URL, second.Published.Index.Tasks[0].Model.URL, "the known task keeps its model")

	// Eval on held-out images of both tasks.
	writeRows(t, filepath.Join(work, "test.csv"), append(idxRows(50000, 400, 0, train.Labels), idxRows(50000, 400, 90, train.Labels)...))
	metrics, err := Eval(ctx, newWorker(map[string]string{"SEDNA_KB_TOKEN": "w", "MODEL_URLS": second.Published.LocalFile,
		"TEST_DATASET_URL": filepath.Join(work, "test.csv")}), store, filepath.Join(work, "eval-cache"))
	require.NoError(t, err)
	for _, id := range []string{"rotation-0", "rotation-90"} {
		require.Greater(t, metrics[id]["accuracy"], 0.8, id)
		require.Greater(t, metrics[id]["allocation"], 0.85, id)
	}
	require.Len(t, sent.messages, 3)
	require.Equal(t, []string{"train", "train", "eval"}, []string{sent.messages[0].Kind, sent.messages[1].Kind, sent.messages[2].Kind})

	// Inference with the read token, from the deployed index file.
	deployed := filepath.Join(work, "deploy", "index.pkl")
	require.NoError(t, os.MkdirAll(filepath.Dir(deployed), 0o755))
	content, err := os.ReadFile(second.Published.LocalFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(deployed, content, 0o644))
	infer := NewInferServer(newWorker(map[string]string{"SEDNA_KB_TOKEN": "r", "MODEL_URLS": deployed}), deployed,
		filepath.Join(work, "infer-cache"), filepath.Join(work, "unseen"), logr.Discard())
	require.NoError(t, infer.Reload(ctx))
	upright, turned := Rotate(train.Head(1), 0), Rotate(train.Head(1), 90)
	answers, err := infer.Classify(ctx, [][]float64{upright.Image(0), turned.Image(0)})
	require.NoError(t, err)
	require.Equal(t, "rotation-0", answers[0].Task)
	require.Equal(t, "rotation-90", answers[1].Task)
	require.Equal(t, int(train.Labels[0]), answers[0].Label)

	// The knowledge base goes away: the worker answers from its cached index and models, and a
	// restarted worker too.
	server.Close()
	answers, err = infer.Classify(ctx, [][]float64{turned.Image(0)})
	require.NoError(t, err)
	require.Equal(t, "rotation-90", answers[0].Task)
	restarted := NewInferServer(newWorker(map[string]string{"SEDNA_KB_TOKEN": "r"}), deployed,
		filepath.Join(work, "infer-cache"), "", logr.Discard())
	require.NoError(t, restarted.Reload(ctx))
	answers, err = restarted.Classify(ctx, [][]float64{upright.Image(0)})
	require.NoError(t, err)
	require.Equal(t, "rotation-0", answers[0].Task)
	require.Equal(t, 4, infer.Stats().Inferences+restarted.Stats().Inferences)

	// A sample of a task never learned (45°) tends to be flagged and filed for labelling.
	diagonal := Rotate(train.Head(200), 45)
	images := make([][]float64, diagonal.Len())
	for i := range images {
		images[i] = diagonal.Image(i)
	}
	answers, err = infer.Classify(ctx, images)
	require.NoError(t, err)
	unseen := 0
	for _, answer := range answers {
		if answer.Unseen {
			unseen++
		}
	}
	require.Greater(t, unseen, 100)
	filed, err := os.ReadDir(filepath.Join(work, "unseen"))
	require.NoError(t, err)
	require.NotEmpty(t, filed)
}

func TestParseCSVNamesTheProblem(t *testing.T) {
	for name, tc := range map[string]struct{ content, want string }{
		"header":   {"img,label,rotation\n", `dataset header is "img,label,rotation"`},
		"label":    {"ref,label,rotation\na.png,12,0\n", "line 2: label \"12\""},
		"rotation": {"ref,label,rotation\na.png,1,x\n", "line 2: rotation \"x\""},
		"ref":      {"ref,label,rotation\n../a.png,1,0\n", "line 2: reference"},
		"columns":  {"ref,label,rotation\na.png,1\n", "wrong number of fields"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCSV([]byte(tc.content))
			require.ErrorContains(t, err, tc.want)
		})
	}
	rows, err := ParseCSV([]byte("ref,label,rotation\nmnist/t.gz:3,7,45\n"))
	require.NoError(t, err)
	require.Equal(t, []Row{{Ref: "mnist/t.gz:3", Label: 7, Rotation: 45}}, rows)
}
