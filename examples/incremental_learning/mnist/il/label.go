package il

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// Labeller stands in for the human labellers of a real deployment: it knows the true label of
// every MNIST training image and finds an image by its exact grey levels. Images that are not
// MNIST training images (test images included) get no label.
type Labeller struct {
	labels map[[sha256.Size]byte]uint8
}

// NewLabeller indexes the training set by image content.
func NewLabeller(train model.Dataset) *Labeller {
	l := &Labeller{labels: make(map[[sha256.Size]byte]uint8, train.Len())}
	for i := 0; i < train.Len(); i++ {
		key := sha256.Sum256(train.Pixels[i*model.Pixels : (i+1)*model.Pixels])
		if _, seen := l.labels[key]; !seen {
			l.labels[key] = train.Labels[i]
		}
	}
	return l
}

// Label returns the true label of an MNIST training image.
func (l *Labeller) Label(pixels []uint8) (int, bool) {
	label, ok := l.labels[sha256.Sum256(pixels)]
	return int(label), ok
}

// LabelReport says what one labelling pass did.
type LabelReport struct {
	// Collected is the number of hard examples in the collector's index.
	Collected int `json:"collected"`
	// AlreadyLabelled were in the dataset index before this pass.
	AlreadyLabelled int `json:"alreadyLabelled"`
	// Added were appended to the dataset index.
	Added int `json:"added"`
	// Unknown are images the labeller has no label for (not MNIST training images).
	Unknown int `json:"unknown"`
	// Unreadable are index lines whose file is missing or not a 28x28 PNG.
	Unreadable int `json:"unreadable"`
}

// LabelHardExamples labels the hard examples listed in hardDir's collector index and appends the
// new ones to the dataset index as "<hard example file relative to the index's directory> <label>".
// It is idempotent: examples already in the dataset index are skipped.
func LabelHardExamples(l *Labeller, datasetIndex, hardDir, collectorIndex string) (LabelReport, error) {
	var report LabelReport
	rel, err := filepath.Rel(filepath.Dir(datasetIndex), hardDir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return report, fmt.Errorf("the hard example directory %s must be below the dataset index's directory %s", hardDir, filepath.Dir(datasetIndex))
	}
	existing, err := ReadIndex(datasetIndex)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return report, err
	}
	known := make(map[string]bool, len(existing))
	for _, s := range existing {
		known[s.Ref] = true
	}
	if collectorIndex == "" {
		collectorIndex = "index.txt"
	}
	content, err := os.ReadFile(filepath.Join(hardDir, collectorIndex))
	if errors.Is(err, fs.ErrNotExist) {
		return report, nil // nothing collected yet
	}
	if err != nil {
		return report, fmt.Errorf("reading the hard example index: %w", err)
	}
	var added []Sample
	scanner := bufio.NewScanner(bytes.NewReader(content))
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 {
			continue
		}
		report.Collected++
		// The collector wrote the path as the inference worker saw it; the file is in hardDir.
		name := path.Base(filepath.ToSlash(fields[0]))
		ref := filepath.ToSlash(filepath.Join(rel, name))
		if known[ref] {
			report.AlreadyLabelled++
			continue
		}
		file, err := os.ReadFile(filepath.Join(hardDir, name))
		if err != nil {
			report.Unreadable++
			continue
		}
		pixels, err := DecodePNG(file)
		if err != nil {
			report.Unreadable++
			continue
		}
		label, ok := l.Label(pixels)
		if !ok {
			report.Unknown++
			continue
		}
		if _, err := ParseRef(ref); err != nil {
			report.Unreadable++
			continue
		}
		known[ref] = true
		added = append(added, Sample{Ref: ref, Label: label})
	}
	if err := scanner.Err(); err != nil {
		return report, fmt.Errorf("reading the hard example index: %w", err)
	}
	if err := AppendIndex(datasetIndex, added); err != nil {
		return report, err
	}
	report.Added = len(added)
	return report, nil
}
