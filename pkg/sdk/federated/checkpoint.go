package federated

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Checkpoint is the aggregator's durable state: the global model after the
// last completed round.
type Checkpoint struct {
	Job string
	// Namespace and JobUID identify the job beyond its name (empty when the
	// aggregator did not know them, and in checkpoints written before they
	// were recorded): a job deleted and created again under the same name
	// has a new UID, and its aggregator refuses the old job's checkpoint.
	Namespace string
	JobUID    string
	Algorithm string
	// Round is the number of completed rounds.
	Round       int
	TotalSample int
	Weights     Weights
	// Velocity is the server optimizer's momentum (ServerOptimizer), nil
	// when it keeps none.
	Velocity Weights
	// Finished is set once a stop condition held; Reason says which.
	Finished bool
	Reason   string
	Metrics  map[string]float64
	SavedAt  time.Time
}

// CheckpointStore keeps the latest checkpoint. Save must be atomic: after a
// crash Load returns either the previous checkpoint or the new one.
type CheckpointStore interface {
	// Load returns nil, nil when there is no checkpoint yet.
	Load(ctx context.Context) (*Checkpoint, error)
	Save(ctx context.Context, cp *Checkpoint) error
}

// DirStore keeps the checkpoint in one file of a local directory (an
// emptyDir survives a container restart; a hostPath or PVC survives a pod's).
type DirStore struct {
	Dir string
	// File is the file name inside Dir; empty means CheckpointFile.
	File string
}

func (s DirStore) file() string {
	if s.File == "" {
		return CheckpointFile
	}
	return s.File
}

// CheckpointFile is the file name inside DirStore.Dir.
const CheckpointFile = "global-model.sflb"

var _ CheckpointStore = DirStore{}

type checkpointHeader struct {
	Job         string             `json:"job"`
	Namespace   string             `json:"namespace,omitempty"`
	JobUID      string             `json:"job_uid,omitempty"`
	Algorithm   string             `json:"algorithm"`
	Round       int                `json:"round"`
	TotalSample int                `json:"total_sample"`
	Finished    bool               `json:"finished,omitempty"`
	Reason      string             `json:"reason,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
	SavedAt     time.Time          `json:"saved_at"`
	// VelocityLayers is how many of the frame's layers, after the model's,
	// are the server optimizer's velocity.
	VelocityLayers int `json:"velocity_layers,omitempty"`
}

// Save writes the checkpoint as a binary frame (float64, so resuming loses no
// precision) followed by a CRC-32 of it: a temporary file in the same
// directory, fsync, rename over the old one, fsync of the directory.
func (s DirStore) Save(_ context.Context, cp *Checkpoint) error {
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	body, err := cp.MarshalBinary()
	if err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	tmp, err := os.CreateTemp(s.Dir, s.file()+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()        // already failing; the write error is returned
			_ = os.Remove(tmpName) // best effort: a stray temp file is harmless
		}
	}()
	if _, err := tmp.Write(body); err != nil {
		return fmt.Errorf("saving checkpoint: writing %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("saving checkpoint: syncing %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving checkpoint: closing %s: %w", tmpName, err)
	}
	final := filepath.Join(s.Dir, s.file())
	if err := os.Rename(tmpName, final); err != nil {
		return fmt.Errorf("saving checkpoint: renaming to %s: %w", final, err)
	}
	committed = true
	dir, err := os.Open(s.Dir)
	if err != nil {
		return fmt.Errorf("saving checkpoint: opening %s to sync it: %w", s.Dir, err)
	}
	defer func() { _ = dir.Close() }() // read-only handle; Sync reported any error
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("saving checkpoint: syncing %s: %w", s.Dir, err)
	}
	return nil
}

// Load reads the checkpoint, or returns nil, nil when there is none.
func (s DirStore) Load(_ context.Context) (*Checkpoint, error) {
	path := filepath.Join(s.Dir, s.file())
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading checkpoint: %w", err)
	}
	cp, err := UnmarshalCheckpoint(data)
	if err != nil {
		return nil, fmt.Errorf("loading checkpoint %s: %w", path, err)
	}
	return cp, nil
}

// MarshalBinary encodes the checkpoint as a file: a binary frame (float64
// values) of type "checkpoint" whose header holds the checkpoint's fields,
// followed by the CRC-32 (IEEE, little-endian) of the frame. The
// aggregator's final model file has this format too.
func (cp *Checkpoint) MarshalBinary() ([]byte, error) {
	header := checkpointHeader{
		Job: cp.Job, Namespace: cp.Namespace, JobUID: cp.JobUID, Algorithm: cp.Algorithm, Round: cp.Round, TotalSample: cp.TotalSample,
		Finished: cp.Finished, Reason: cp.Reason, Metrics: cp.Metrics, SavedAt: cp.SavedAt.UTC(),
		VelocityLayers: len(cp.Velocity),
	}
	meta, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	layers := cp.Weights
	if len(cp.Velocity) > 0 {
		layers = append(slices.Clip(cp.Weights), cp.Velocity...)
	}
	frame, err := encodeBinary(binaryHeader{Type: "checkpoint", Meta: meta}, layers, Float64)
	if err != nil {
		return nil, err
	}
	return binary.LittleEndian.AppendUint32(frame, crc32.ChecksumIEEE(frame)), nil
}

// UnmarshalCheckpoint decodes what MarshalBinary wrote, refusing a file
// whose checksum does not match.
func UnmarshalCheckpoint(data []byte) (*Checkpoint, error) {
	if len(data) < 4 {
		return nil, errors.New("truncated checkpoint")
	}
	frame, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(frame) != sum {
		return nil, errors.New("checkpoint checksum mismatch (corrupt file)")
	}
	h, w, _, err := decodeBinary(frame)
	if err != nil {
		return nil, err
	}
	if h.Type != "checkpoint" {
		return nil, fmt.Errorf("not a checkpoint but a %q frame", h.Type)
	}
	var header checkpointHeader
	if err := json.Unmarshal(h.Meta, &header); err != nil {
		return nil, fmt.Errorf("checkpoint header: %w", err)
	}
	if header.Round < 0 {
		return nil, fmt.Errorf("checkpoint round %d is negative", header.Round)
	}
	var velocity Weights
	if header.VelocityLayers != 0 {
		if header.VelocityLayers < 0 || 2*header.VelocityLayers != len(w) {
			return nil, fmt.Errorf("checkpoint has %d layers, not twice its %d velocity layers", len(w), header.VelocityLayers)
		}
		w, velocity = w[:header.VelocityLayers:header.VelocityLayers], w[header.VelocityLayers:]
	}
	return &Checkpoint{Velocity: velocity,
		Job: header.Job, Namespace: header.Namespace, JobUID: header.JobUID, Algorithm: header.Algorithm, Round: header.Round, TotalSample: header.TotalSample,
		Weights: w, Finished: header.Finished, Reason: header.Reason, Metrics: header.Metrics, SavedAt: header.SavedAt,
	}, nil
}
