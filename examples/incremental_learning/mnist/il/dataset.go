package il

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// MNIST file names as the GoMNIST module ships them.
const (
	TrainImagesFile = "train-images-idx3-ubyte.gz"
	TrainLabelsFile = "train-labels-idx1-ubyte.gz"
	TestImagesFile  = "t10k-images-idx3-ubyte.gz"
	TestLabelsFile  = "t10k-labels-idx1-ubyte.gz"
	// MNISTSubdir is where the example keeps the MNIST files, below the dataset index's directory.
	MNISTSubdir = "mnist"
)

// maxIdxImages bounds an idx file's declared image count (MNIST's training set has 60,000).
const maxIdxImages = 1 << 20

// Sample is one line of a dataset index: "<ref> <label>".
type Sample struct {
	// Ref names the image, relative to the index file's directory: "dir/file.png" for an image
	// file, "dir/file-idx3-ubyte[.gz]:<n>" for the n-th (0-based) image of an MNIST idx file.
	Ref   string
	Label int
}

// String is the sample's index line, without the newline.
func (s Sample) String() string { return s.Ref + " " + strconv.Itoa(s.Label) }

// Ref is a parsed sample reference.
type Ref struct {
	// Path is the clean, relative, slash-separated file path.
	Path string
	// Index is the image's position in an idx file, or -1 for an image file.
	Index int
}

// ParseRef checks a sample reference: a relative path that stays below the index's directory,
// optionally followed by ":<image number>" for idx files.
func ParseRef(ref string) (Ref, error) {
	parsed := Ref{Path: ref, Index: -1}
	if at := strings.LastIndexByte(ref, ':'); at >= 0 {
		n, err := strconv.Atoi(ref[at+1:])
		if err != nil || n < 0 || ref[at+1:] != strconv.Itoa(n) {
			return Ref{}, fmt.Errorf("reference %q: %q after the last ':' is not an image number", ref, ref[at+1:])
		}
		parsed.Path, parsed.Index = ref[:at], n
	}
	switch {
	case parsed.Path == "":
		return Ref{}, fmt.Errorf("reference %q has no file", ref)
	case strings.ContainsAny(parsed.Path, "\\\x00") || path.IsAbs(parsed.Path) || !fs.ValidPath(parsed.Path):
		return Ref{}, fmt.Errorf("reference %q: %q is not a clean relative path below the dataset directory", ref, parsed.Path)
	case parsed.Index < 0 && !strings.EqualFold(path.Ext(parsed.Path), ".png"):
		return Ref{}, fmt.Errorf("reference %q: an image file must be .png (or name an idx file image as file:<n>)", ref)
	}
	return parsed, nil
}

// ParseLine parses one index line: a reference and a label 0-9, separated by blanks.
func ParseLine(line string) (Sample, error) {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return Sample{}, fmt.Errorf("line %q: want \"<ref> <label>\", got %d fields", line, len(fields))
	}
	if _, err := ParseRef(fields[0]); err != nil {
		return Sample{}, fmt.Errorf("line %q: %w", line, err)
	}
	label, err := strconv.Atoi(fields[1])
	if err != nil || label < 0 || label >= model.Classes || fields[1] != strconv.Itoa(label) {
		return Sample{}, fmt.Errorf("line %q: label %q is not a digit 0-9", line, fields[1])
	}
	return Sample{Ref: fields[0], Label: label}, nil
}

// ParseIndex parses an index file's content. Blank lines are skipped, as the LC skips them when
// it counts samples.
func ParseIndex(content []byte) ([]Sample, error) {
	var samples []Sample
	scanner := bufio.NewScanner(bytes.NewReader(content))
	scanner.Buffer(make([]byte, 0, 4096), 1<<20)
	for number := 1; scanner.Scan(); number++ {
		line := scanner.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		sample, err := ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("index line %d: %w", number, err)
		}
		samples = append(samples, sample)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	return samples, nil
}

// ReadIndex reads and parses an index file.
func ReadIndex(file string) ([]Sample, error) {
	content, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading index %s: %w", file, err)
	}
	samples, err := ParseIndex(content)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", file, err)
	}
	return samples, nil
}

// AppendIndex appends samples to an index file (created if missing) in one write, so a reader
// counting lines (the LC's dataset monitor) never sees part of the batch as a finished line.
func AppendIndex(file string, samples []Sample) error {
	if len(samples) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, s := range samples {
		buf.WriteString(s.String())
		buf.WriteByte('\n')
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening index %s: %w", file, err)
	}
	_, writeErr := f.Write(buf.Bytes())
	if err := errors.Join(writeErr, f.Close()); err != nil {
		return fmt.Errorf("appending to index %s: %w", file, err)
	}
	return nil
}

// WriteIndex writes samples as a new index file.
func WriteIndex(file string, samples []Sample) error {
	var buf bytes.Buffer
	for _, s := range samples {
		buf.WriteString(s.String())
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing index %s: %w", file, err)
	}
	return nil
}

// Store loads the images samples refer to. References resolve below Root (the dataset index's
// directory); an idx file missing there is looked up by its base name in MNISTDir, if set. Idx
// files are read once and cached. It is safe for concurrent use.
type Store struct {
	Root     string
	MNISTDir string

	mu  sync.Mutex
	idx map[string][]uint8
}

// NewStore returns a store for the dataset directory root.
func NewStore(root, mnistDir string) *Store {
	return &Store{Root: root, MNISTDir: mnistDir, idx: map[string][]uint8{}}
}

// Load reads the images of samples into a dataset with the samples' labels.
func (s *Store) Load(samples []Sample) (model.Dataset, error) {
	data := model.Dataset{Pixels: make([]uint8, 0, len(samples)*model.Pixels), Labels: make([]uint8, 0, len(samples))}
	for _, sample := range samples {
		pixels, err := s.Image(sample.Ref)
		if err != nil {
			return model.Dataset{}, err
		}
		data.Pixels = append(data.Pixels, pixels...)
		data.Labels = append(data.Labels, uint8(sample.Label))
	}
	return data, nil
}

// Image returns the 784 grey levels of the referenced image.
func (s *Store) Image(ref string) ([]uint8, error) {
	parsed, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if parsed.Index < 0 {
		content, err := s.readFile(parsed.Path)
		if err != nil {
			return nil, fmt.Errorf("sample %s: %w", ref, err)
		}
		pixels, err := DecodePNG(content)
		if err != nil {
			return nil, fmt.Errorf("sample %s: %w", ref, err)
		}
		return pixels, nil
	}
	images, err := s.idxImages(parsed.Path)
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", ref, err)
	}
	if parsed.Index >= len(images)/model.Pixels {
		return nil, fmt.Errorf("sample %s: %s has %d images", ref, parsed.Path, len(images)/model.Pixels)
	}
	return images[parsed.Index*model.Pixels : (parsed.Index+1)*model.Pixels], nil
}

func (s *Store) readFile(rel string) ([]byte, error) {
	root, err := os.OpenRoot(s.Root)
	if err != nil {
		return nil, fmt.Errorf("opening the dataset directory: %w", err)
	}
	defer func() { _ = root.Close() }() // a directory handle only
	return root.ReadFile(rel)
}

func (s *Store) idxImages(rel string) ([]uint8, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if images, ok := s.idx[rel]; ok {
		return images, nil
	}
	content, err := s.readFile(rel)
	if errors.Is(err, fs.ErrNotExist) && s.MNISTDir != "" {
		content, err = os.ReadFile(filepath.Join(s.MNISTDir, path.Base(rel)))
	}
	if err != nil {
		return nil, fmt.Errorf("reading idx file %s (below %s, or %s): %w", rel, s.Root, s.MNISTDir, err)
	}
	images, err := DecodeIdxImages(content)
	if err != nil {
		return nil, fmt.Errorf("idx file %s: %w", rel, err)
	}
	s.idx[rel] = images
	return images, nil
}

// DecodeIdxImages decodes an idx3-ubyte file of 28x28 images, gzipped or not, into the images'
// grey levels, one after another.
func DecodeIdxImages(content []byte) ([]uint8, error) {
	var r io.Reader = bytes.NewReader(content)
	if len(content) >= 2 && content[0] == 0x1f && content[1] == 0x8b {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		r = gz
	}
	var header [16]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	be := binary.BigEndian
	if magic := be.Uint32(header[0:]); magic != 0x803 {
		return nil, fmt.Errorf("magic %#x is not an idx3-ubyte image file's 0x803", magic)
	}
	count, rows, cols := be.Uint32(header[4:]), be.Uint32(header[8:]), be.Uint32(header[12:])
	if rows != model.Side || cols != model.Side {
		return nil, fmt.Errorf("images are %dx%d, want %dx%d", rows, cols, model.Side, model.Side)
	}
	if count > maxIdxImages {
		return nil, fmt.Errorf("%d images is more than %d", count, maxIdxImages)
	}
	images := make([]uint8, int(count)*model.Pixels)
	if _, err := io.ReadFull(r, images); err != nil {
		return nil, fmt.Errorf("reading %d images: %w", count, err)
	}
	return images, nil
}

// DecodeIdxLabels decodes an idx1-ubyte label file, gzipped or not.
func DecodeIdxLabels(content []byte) ([]uint8, error) {
	var r io.Reader = bytes.NewReader(content)
	if len(content) >= 2 && content[0] == 0x1f && content[1] == 0x8b {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		r = gz
	}
	var header [8]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	if magic := binary.BigEndian.Uint32(header[0:]); magic != 0x801 {
		return nil, fmt.Errorf("magic %#x is not an idx1-ubyte label file's 0x801", magic)
	}
	count := binary.BigEndian.Uint32(header[4:])
	if count > maxIdxImages {
		return nil, fmt.Errorf("%d labels is more than %d", count, maxIdxImages)
	}
	labels := make([]uint8, count)
	if _, err := io.ReadFull(r, labels); err != nil {
		return nil, fmt.Errorf("reading %d labels: %w", count, err)
	}
	for i, label := range labels {
		if label >= model.Classes {
			return nil, fmt.Errorf("label %d is %d", i, label)
		}
	}
	return labels, nil
}
