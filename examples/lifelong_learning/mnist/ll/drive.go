package ll

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// InferClient calls the inference worker's API (InferServer).
type InferClient struct {
	BaseURL string
	HTTP    *http.Client
}

// Classify sends images in batches the worker accepts and returns one result per image.
func (c *InferClient) Classify(ctx context.Context, images [][]float64) ([]Classification, error) {
	results := make([]Classification, 0, len(images))
	for start := 0; start < len(images); start += maxClassifyImages {
		batch := images[start:min(start+maxClassifyImages, len(images))]
		body, err := json.Marshal(ClassifyRequest{Images: batch})
		if err != nil {
			return nil, err
		}
		var answer struct {
			Results []Classification `json:"results"`
		}
		if err := c.do(ctx, http.MethodPost, "/classify", body, &answer); err != nil {
			return nil, err
		}
		if len(answer.Results) != len(batch) {
			return nil, fmt.Errorf("classify: %d results for %d images", len(answer.Results), len(batch))
		}
		results = append(results, answer.Results...)
	}
	return results, nil
}

// Stats reads GET /stats.
func (c *InferClient) Stats(ctx context.Context) (InferStats, error) {
	var stats InferStats
	return stats, c.do(ctx, http.MethodGet, "/stats", nil, &stats)
}

func (c *InferClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	request, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	request.Header.Set("Content-Type", "application/json")
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	response, err := client.Do(request)
	if err != nil {
		return err
	}
	defer func() { _ = response.Body.Close() }() // read in full below
	content, err := io.ReadAll(io.LimitReader(response.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, response.Status, strings.TrimSpace(string(content)))
	}
	return json.Unmarshal(content, out)
}

// Sample is one image the driver sends, with what a labeller would say about it.
type Sample struct {
	Image    []float64
	Label    int
	Rotation int
}

// RotatedSamples returns images [from, from+n) of data rotated by rotation degrees.
func RotatedSamples(data model.Dataset, from, n, rotation int) ([]Sample, error) {
	if from < 0 || n < 0 || from+n > data.Len() {
		return nil, fmt.Errorf("images %d to %d of %d", from, from+n, data.Len())
	}
	part := Rotate(Subset(data, rangeIndices(from, n)), float64(rotation))
	samples := make([]Sample, n)
	for i := range samples {
		samples[i] = Sample{Image: part.Image(i), Label: int(part.Labels[i]), Rotation: rotation}
	}
	return samples, nil
}

func rangeIndices(from, n int) []int {
	indices := make([]int, n)
	for i := range indices {
		indices[i] = from + i
	}
	return indices
}

// UnseenFileName is the name the inference worker files an unseen image under.
func UnseenFileName(image []float64) (string, error) {
	content, err := il.EncodePNG(il.FromUnit(image))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:8]) + ".png", nil
}

// StreamReport is what streaming one batch through the inference worker measured: how well its
// unseen-task scores separate the new task's images (positives) from the known tasks'.
type StreamReport struct {
	Streamed int     `json:"streamed"`
	NewTask  int     `json:"newTask"`
	AUROC    float64 `json:"auroc"`
	// Precision and recall of the worker's unseen flag.
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	Flagged   int     `json:"flagged"`
}

// Stream classifies samples through the worker; isNew says which belong to the task it has not
// learned.
func Stream(ctx context.Context, client *InferClient, samples []Sample, isNew func(Sample) bool) (StreamReport, error) {
	images := make([][]float64, len(samples))
	for i, s := range samples {
		images[i] = s.Image
	}
	results, err := client.Classify(ctx, images)
	if err != nil {
		return StreamReport{}, err
	}
	report := StreamReport{Streamed: len(samples)}
	var positives, negatives []float64
	truePositives := 0
	for i, r := range results {
		positive := isNew(samples[i])
		if positive {
			report.NewTask++
			positives = append(positives, r.Score)
		} else {
			negatives = append(negatives, r.Score)
		}
		if r.Unseen {
			report.Flagged++
			if positive {
				truePositives++
			}
		}
	}
	report.AUROC = AUROC(positives, negatives)
	if report.Flagged > 0 {
		report.Precision = float64(truePositives) / float64(report.Flagged)
	}
	if report.NewTask > 0 {
		report.Recall = float64(truePositives) / float64(report.NewTask)
	}
	return report, nil
}

// AUROC is the probability that a positive scores above a negative (ties count half).
func AUROC(positives, negatives []float64) float64 {
	if len(positives) == 0 || len(negatives) == 0 {
		return 0
	}
	var sum float64
	for _, p := range positives {
		for _, n := range negatives {
			switch {
			case p > n:
				sum++
			case p == n:
				sum += 0.5
			}
		}
	}
	return sum / float64(len(positives)*len(negatives))
}

// LabelReport says what labelling the filed unseen images did.
type LabelReport struct {
	// Labelled rows appended to the dataset, per rotation.
	Labelled map[string]int `json:"labelled"`
	// Unknown are filed images the labeller did not send (left in place).
	Unknown int `json:"unknown"`
}

// LabelUnseen stands in for the human labellers: every image the worker filed in unseenDir that
// is one of samples is moved to datasetDir/labelled and appended to the dataset csv with its digit
// and rotation (MNIST's labels, known to the driver). Rows are appended in one write, so the LC
// never reads half a batch.
func LabelUnseen(samples []Sample, unseenDir, datasetDir, datasetFile string) (LabelReport, error) {
	report := LabelReport{Labelled: map[string]int{}}
	byName := map[string]Sample{}
	for _, s := range samples {
		name, err := UnseenFileName(s.Image)
		if err != nil {
			return report, err
		}
		byName[name] = s
	}
	entries, err := os.ReadDir(unseenDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return report, fmt.Errorf("reading the unseen images: %w", err)
	}
	labelledDir := filepath.Join(datasetDir, "labelled")
	if err := os.MkdirAll(labelledDir, 0o755); err != nil {
		return report, err
	}
	var rows []Row
	for _, entry := range entries {
		sample, ok := byName[entry.Name()]
		if !ok {
			report.Unknown++
			continue
		}
		if err := os.Rename(filepath.Join(unseenDir, entry.Name()), filepath.Join(labelledDir, entry.Name())); err != nil {
			return report, fmt.Errorf("moving a labelled image: %w", err)
		}
		rows = append(rows, Row{Ref: "labelled/" + entry.Name(), Label: sample.Label, Rotation: sample.Rotation})
		report.Labelled[strconv.Itoa(sample.Rotation)]++
	}
	// The LC sends the first trainProb of every appended batch to training and the rest to
	// evaluation: interleave the rotations so both get each task.
	shuffled := make([]Row, len(rows))
	for i, j := range Shuffle(len(rows), uint64(len(rows))) {
		shuffled[i] = rows[j]
	}
	return report, AppendRows(datasetFile, shuffled)
}

// AppendRows appends rows to a dataset csv (writing the header first if the file is new).
func AppendRows(file string, rows []Row) error {
	var buffer bytes.Buffer
	if err := WriteCSV(&buffer, rows); err != nil {
		return err
	}
	content := buffer.Bytes()
	if info, err := os.Stat(file); err == nil && info.Size() > 0 {
		content = content[bytes.IndexByte(content, '\n')+1:] // the header is there already
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		_ = f.Close() // the write error is the one to report
		return err
	}
	return f.Close()
}

// TaskAccuracy is what the worker did with one task's test images.
type TaskAccuracy struct {
	Accuracy float64 `json:"accuracy"`
	// Routed is the share of images the worker sent to this task's own model.
	Routed float64        `json:"routed"`
	ByTask map[string]int `json:"byTask"`
}

// MeasureTasks classifies every rotation's test samples through the worker.
func MeasureTasks(ctx context.Context, client *InferClient, test map[int][]Sample) (map[string]TaskAccuracy, error) {
	out := map[string]TaskAccuracy{}
	for rotation, samples := range test {
		images := make([][]float64, len(samples))
		for i, s := range samples {
			images[i] = s.Image
		}
		results, err := client.Classify(ctx, images)
		if err != nil {
			return nil, err
		}
		task := TaskID(rotation)
		measured := TaskAccuracy{ByTask: map[string]int{}}
		correct, routed := 0, 0
		for i, r := range results {
			if r.Label == samples[i].Label {
				correct++
			}
			if r.Task == task {
				routed++
			}
			measured.ByTask[r.Task]++
		}
		measured.Accuracy = float64(correct) / float64(len(samples))
		measured.Routed = float64(routed) / float64(len(samples))
		out[task] = measured
	}
	return out, nil
}
