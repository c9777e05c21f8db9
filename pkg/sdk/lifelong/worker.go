package lifelong

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

// Report vocabulary of lifelong learning workers.
const (
	OwnerKind       = "lifelonglearningjob"
	KindTrain       = "train"
	KindEval        = "eval"
	StatusCompleted = "completed"
	// IndexFileName is the name of the index a stage writes into OUTPUT_URL.
	IndexFileName = "index.json"
	// ResultFormat is the format of the reported index.
	ResultFormat = "json"
)

// Reporter sends one message to the LC; *lc.Client implements it.
type Reporter interface {
	Report(ctx context.Context, msg lc.Message) error
}

// Options build a Worker; the zero value reads the process environment.
type Options struct {
	Env      *env.Context
	Reporter Reporter
	// HTTPClient is used for the knowledge base.
	HTTPClient *http.Client
}

// Worker is one lifelong learning stage process: its configuration, LC and knowledge base.
type Worker struct {
	cfg                  Config
	env                  *env.Context
	reporter             Reporter
	kb                   *KBClient
	name, namespace, job string
}

// NewWorker reads the environment and builds the LC client; the knowledge base client only when
// KB_SERVER is set (the inference worker may have none).
func NewWorker(opts Options) (*Worker, error) {
	environment := opts.Env
	if environment == nil {
		environment = env.FromOS()
	}
	cfg, err := ReadConfig(environment)
	if err != nil {
		return nil, fmt.Errorf("configuring the lifelong learning worker: %w", err)
	}
	w := &Worker{cfg: cfg, env: environment, reporter: opts.Reporter, job: environment.JobName(), namespace: environment.Namespace(), name: environment.WorkerName()}
	if w.name == "" {
		w.name = w.job
	}
	if w.namespace == "" {
		w.namespace = w.job
	}
	if w.reporter == nil {
		client, err := lc.New(lc.Options{Server: environment.LCServerURL(), Worker: w.name, Token: environment.Get(workerauth.TokenEnv, "")})
		if err != nil {
			return nil, fmt.Errorf("creating the lifelong learning worker: %w", err)
		}
		w.reporter = client
	}
	if cfg.KBServer != "" {
		if w.kb, err = NewKBClient(cfg.KBServer, cfg.KBToken, opts.HTTPClient); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Config is what the worker read from its environment.
func (w *Worker) Config() Config { return w.cfg }

// KB is the knowledge base client, nil without KB_SERVER.
func (w *Worker) KB() *KBClient { return w.kb }

// PreviousIndex is the index this training extends: CLOUD_KB_INDEX after the initial training,
// nil before.
func (w *Worker) PreviousIndex(ctx context.Context) (*kb.Index, error) {
	if !w.cfg.HasCompletedInitialTraining {
		return nil, nil
	}
	return w.LoadIndex(ctx, w.cfg.CloudKBIndex)
}

// LoadIndex reads a JSON index from a local path (a mounted OUTPUT_URL or deploy file) or from
// the knowledge base.
func (w *Worker) LoadIndex(ctx context.Context, location string) (*kb.Index, error) {
	if strings.HasPrefix(location, "http://") || strings.HasPrefix(location, "https://") || strings.HasPrefix(location, "/file/") {
		if w.kb == nil {
			return nil, fmt.Errorf("the index %s is in a knowledge base, but %s is not set", location, EnvKBServer)
		}
		return w.kb.DownloadIndex(ctx, location)
	}
	content, err := os.ReadFile(w.localPath(location))
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	index, err := kb.ParseIndex(content)
	if err != nil {
		return nil, fmt.Errorf("the index at %s: %w", location, err)
	}
	return index, nil
}

// localPath maps a reported host path back into the container (DATA_PATH_PREFIX), when the
// path is not already there.
func (w *Worker) localPath(path string) string {
	if _, err := os.Stat(path); err == nil {
		return path
	}
	prefix := strings.TrimSuffix(w.cfg.DataPathPrefix, "/")
	if prefix != "" && strings.HasPrefix(path, "/") && !strings.HasPrefix(path, prefix+"/") {
		return prefix + path
	}
	return path
}

// hostPath removes DATA_PATH_PREFIX, as reported URLs name host paths (upstream's rule).
func (w *Worker) hostPath(path string) string {
	prefix := strings.TrimSuffix(w.cfg.DataPathPrefix, "/")
	if rest, ok := strings.CutPrefix(path, prefix+"/"); ok && prefix != "" {
		return "/" + rest
	}
	return path
}

// Published is where an index went.
type Published struct {
	Index *kb.Index
	// KBURL is where the knowledge base serves it (the reported URL); LocalFile where it was
	// written in OUTPUT_URL.
	KBURL, LocalFile string
}

// Publish uploads the index to the knowledge base and writes it into dir (OUTPUT_URL when
// empty), where the LC picks it up for deployment.
func (w *Worker) Publish(ctx context.Context, index *kb.Index, dir string) (Published, error) {
	if w.kb == nil {
		return Published{}, fmt.Errorf("publishing the index: %s is not set", EnvKBServer)
	}
	kbURL, err := w.kb.UpdateIndex(ctx, index)
	if err != nil {
		return Published{}, err
	}
	if dir == "" {
		dir = w.cfg.OutputURL
	}
	file, err := WriteIndexFile(dir, index)
	if err != nil {
		return Published{}, err
	}
	return Published{Index: index, KBURL: kbURL, LocalFile: file}, nil
}

// WriteIndexFile writes index as dir/IndexFileName atomically and returns the file's path.
func WriteIndexFile(dir string, index *kb.Index) (string, error) {
	encoded, err := json.Marshal(index)
	if err != nil {
		return "", fmt.Errorf("encoding the index: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("writing the index: %w", err)
	}
	root, err := hostfs.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("writing the index: %w", err)
	}
	defer func() { _ = root.Close() }() // a directory handle: nothing to flush
	err = hostfs.WriteFileAtomic(root, IndexFileName, 0o644, func(w io.Writer) error {
		_, err := w.Write(encoded)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("writing the index: %w", err)
	}
	file := filepath.Join(dir, IndexFileName)
	return file, nil
}

// result is one reported model in upstream's condition-data shape (contract §2.7): the index,
// with the metrics of every task by task ID.
func (w *Worker) result(published Published, metrics map[string]map[string]float64, labeledUnseen int) map[string]any {
	classes := map[string]bool{}
	for _, task := range published.Index.Tasks {
		for _, class := range task.Model.Classes {
			classes[class] = true
		}
	}
	sortedClasses := make([]string, 0, len(classes))
	for class := range classes {
		sortedClasses = append(sortedClasses, class)
	}
	sort.Strings(sortedClasses)
	if metrics == nil {
		metrics = map[string]map[string]float64{}
		for _, task := range published.Index.Tasks {
			metrics[task.ID] = task.Model.Metrics
		}
	}
	// The knowledge base's URL, as upstream's workers report it: CLOUD_KB_INDEX and the eval
	// pod's MODEL_URLS then reach the index without a mount. A local file only when there is no
	// knowledge base URL (host path: DATA_PATH_PREFIX removed).
	url := published.KBURL
	if url == "" {
		url = w.hostPath(published.LocalFile)
	}
	return map[string]any{
		"format": ResultFormat, "url": url,
		"classes": sortedClasses, "current_metric": metrics,
		"number_of_model": len(published.Index.Tasks), "number_of_labeled_unseen_sample": labeledUnseen,
	}
}

// ReportTrain tells the LC the training is complete with its index; labeledUnseen is the
// number of newly labelled samples of unseen tasks it learned from.
func (w *Worker) ReportTrain(ctx context.Context, published Published, labeledUnseen int) error {
	return w.reporter.Report(ctx, lc.Message{Name: w.name, Namespace: w.namespace, OwnerName: w.job, OwnerKind: OwnerKind,
		Kind: KindTrain, Status: StatusCompleted, Results: []map[string]any{w.result(published, nil, labeledUnseen)}})
}

// ReportEval tells the LC the evaluation of the index is complete: metrics by task ID, and
// "metrics" of the result holds each metric's mean over the tasks (what deploy triggers read).
func (w *Worker) ReportEval(ctx context.Context, published Published, metrics map[string]map[string]float64) error {
	result := w.result(published, metrics, 0)
	means := map[string]float64{}
	for _, byName := range metrics {
		for name, value := range byName {
			means[name] += value / float64(len(metrics))
		}
	}
	result["metrics"] = means
	return w.reporter.Report(ctx, lc.Message{Name: w.name, Namespace: w.namespace, OwnerName: w.job, OwnerKind: OwnerKind,
		Kind: KindEval, Status: StatusCompleted, Results: []map[string]any{result}})
}
