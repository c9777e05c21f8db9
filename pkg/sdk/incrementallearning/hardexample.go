package incrementallearning

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
)

// DefaultHardExampleIndex is the index file a HardExampleCollector appends to.
const DefaultHardExampleIndex = "index.txt"

// HardExampleCollector files hard examples an inference worker mined (see package hem) in one
// directory, each as its own file, and lists them in an index file, one line per example: the
// example's path followed by its annotation, if any. Labelled, the index is the kind of file a
// Dataset's url names, so the examples can flow back into the job's dataset. It is safe for
// concurrent use within one process.
type HardExampleCollector struct {
	dir   *os.Root
	path  string
	index string
	now   func() time.Time

	mu sync.Mutex
}

// NewHardExampleCollector collects into dir (created if missing). index names the index file in
// dir; "" means DefaultHardExampleIndex.
func NewHardExampleCollector(dir, index string) (*HardExampleCollector, error) {
	if index == "" {
		index = DefaultHardExampleIndex
	}
	if err := checkName(index); err != nil {
		return nil, fmt.Errorf("hard example index: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the hard example directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the hard example directory: %w", err)
	}
	return &HardExampleCollector{dir: root, path: dir, index: index, now: time.Now}, nil
}

// Close releases the directory.
func (c *HardExampleCollector) Close() error { return c.dir.Close() }

// IndexPath is the path of the index file.
func (c *HardExampleCollector) IndexPath() string { return filepath.Join(c.path, c.index) }

// Add writes data as a new example file and appends it to the index. name is the file's name in
// the directory ("" or a name already taken gets a unique one, keeping name's extension);
// annotation (e.g. the model's label, for a labeller to check) must be on one line. It returns the
// example's path.
func (c *HardExampleCollector) Add(name string, data []byte, annotation string) (string, error) {
	if strings.ContainsAny(annotation, "\r\n") {
		return "", errors.New("adding a hard example: the annotation spans lines")
	}
	if name != "" {
		if err := checkName(name); err != nil {
			return "", fmt.Errorf("adding a hard example: %w", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	file, chosen, err := c.create(name)
	if err != nil {
		return "", fmt.Errorf("adding a hard example: %w", err)
	}
	_, writeErr := file.Write(data)
	if err := errors.Join(writeErr, file.Close()); err != nil {
		_ = c.dir.Remove(chosen) // not indexed, so a leftover would only waste space
		return "", fmt.Errorf("writing hard example %s: %w", chosen, err)
	}
	path := filepath.Join(c.path, chosen)
	line := path
	if annotation != "" {
		line += " " + annotation
	}
	index, err := c.dir.OpenFile(c.index, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("opening the hard example index: %w", err)
	}
	// One write per line, so concurrent readers (a dataset monitor) never see half a line counted.
	_, writeErr = index.Write([]byte(line + "\n"))
	if err := errors.Join(writeErr, index.Close()); err != nil {
		return "", fmt.Errorf("appending to the hard example index: %w", err)
	}
	return path, nil
}

// create opens a new file for the example, never replacing an existing one.
func (c *HardExampleCollector) create(name string) (*os.File, string, error) {
	ext := filepath.Ext(name)
	candidate := name
	for attempt := 0; attempt < 5; attempt++ {
		if candidate == "" || attempt > 0 {
			suffix := make([]byte, 4)
			if _, err := rand.Read(suffix); err != nil {
				return nil, "", err
			}
			candidate = fmt.Sprintf("%s-%s%s", c.now().UTC().Format("20060102T150405.000000000"), hex.EncodeToString(suffix), ext)
		}
		file, err := c.dir.OpenFile(candidate, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return file, candidate, err
	}
	return nil, "", errors.New("no free file name after 5 attempts")
}

func checkName(name string) error {
	if name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%q is not a plain file name", name)
	}
	return nil
}

// HardExampleMiner builds the miner the job's deploySpec.hardExampleMining names (HEM_NAME,
// HEM_PARAMETERS) from registry (nil means hem.NewRegistry()).
func (w *Worker) HardExampleMiner(registry *hem.Registry) (hem.Miner, error) {
	name := w.env.HEMName()
	if name == "" {
		return nil, fmt.Errorf("%s is not set: the job names no hard example mining algorithm", env.HEMName)
	}
	params, err := w.env.HEMParameters()
	if err != nil {
		return nil, err
	}
	if registry == nil {
		registry = hem.NewRegistry()
	}
	return registry.New(name, params)
}
