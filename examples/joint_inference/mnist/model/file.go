package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
)

// File layout, little-endian:
//
//	magic    [8]byte  "SMNISTM\n"
//	version  uint32   1
//	archLen  uint16, arch [archLen]byte   e.g. "mlp-pool1-h128"
//	layers   uint32
//	per layer: in uint32, out uint32, W [in*out]float64, B [out]float64
//	crc32    uint32   IEEE, of every byte before it
//
// The checksum catches truncated copies, which a hostPath model being
// rewritten while a worker reloads it would otherwise turn into garbage.
const (
	fileMagic   = "SMNISTM\n"
	fileVersion = 1
	// maxFileBytes bounds what Load reads; the cloud model is about 800 KB.
	maxFileBytes = 256 << 20
)

// ErrBadModelFile marks files that are not a valid model.
var ErrBadModelFile = errors.New("not a valid MNIST model file")

// MarshalBinary encodes the model in the file format.
func (m *Model) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	name := m.arch.String()
	buf.WriteString(fileMagic)
	le := binary.LittleEndian
	buf.Write(le.AppendUint32(nil, fileVersion))
	buf.Write(le.AppendUint16(nil, uint16(len(name))))
	buf.WriteString(name)
	buf.Write(le.AppendUint32(nil, uint32(len(m.layers))))
	for _, l := range m.layers {
		buf.Write(le.AppendUint32(nil, uint32(l.in)))
		buf.Write(le.AppendUint32(nil, uint32(l.out)))
		for _, values := range [][]float64{l.W, l.B} {
			for _, v := range values {
				buf.Write(le.AppendUint64(nil, math.Float64bits(v)))
			}
		}
	}
	buf.Write(le.AppendUint32(nil, crc32.ChecksumIEEE(buf.Bytes())))
	return buf.Bytes(), nil
}

// UnmarshalBinary decodes a model file, rejecting anything but an exact,
// intact file of a known architecture.
func UnmarshalBinary(data []byte) (*Model, error) {
	fail := func(format string, args ...any) (*Model, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadModelFile}, args...)...)
	}
	if len(data) < len(fileMagic) || string(data[:len(fileMagic)]) != fileMagic {
		return fail("missing the %q header", fileMagic[:7])
	}
	if len(data) < len(fileMagic)+4+2+4+4 {
		return fail("%d bytes is too short", len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.ChecksumIEEE(body); got != sum {
		return fail("checksum mismatch (stored %08x, computed %08x): the file is truncated or corrupt", sum, got)
	}
	r := &reader{data: body[len(fileMagic):]}
	if version := r.uint32(); version != fileVersion {
		return fail("format version %d, this build reads version %d", version, fileVersion)
	}
	name := string(r.bytes(int(r.uint16())))
	if r.err != nil {
		return fail("reading the architecture: %v", r.err)
	}
	arch, err := ParseArch(name)
	if err != nil {
		return fail("%v", err)
	}
	shapes := arch.layerShapes()
	if count := r.uint32(); int(count) != len(shapes) {
		return fail("architecture %s has %d layers, the file has %d", arch, len(shapes), count)
	}
	m := &Model{arch: arch}
	for index, shape := range shapes {
		in, out := int(r.uint32()), int(r.uint32())
		if r.err != nil {
			return fail("reading layer %d: %v", index, r.err)
		}
		if in != shape[0] || out != shape[1] {
			return fail("layer %d is %dx%d, architecture %s needs %dx%d", index, in, out, arch, shape[0], shape[1])
		}
		l := layer{in: in, out: out, W: r.float64s(in * out), B: r.float64s(out)}
		if r.err != nil {
			return fail("reading layer %d: %v", index, r.err)
		}
		for _, values := range [][]float64{l.W, l.B} {
			for _, v := range values {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fail("layer %d holds a non-finite weight", index)
				}
			}
		}
		m.layers = append(m.layers, l)
	}
	if len(r.data) != 0 {
		return fail("%d unexpected bytes after the last layer", len(r.data))
	}
	return m, nil
}

type reader struct {
	data []byte
	err  error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.data) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	out := r.data[:n]
	r.data = r.data[n:]
	return out
}

func (r *reader) uint16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) uint32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) float64s(n int) []float64 {
	b := r.bytes(n * 8)
	if b == nil {
		return nil
	}
	values := make([]float64, n)
	for i := range values {
		values[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[i*8:]))
	}
	return values
}

// fileMode is a saved model's mode: readable by all.
const fileMode os.FileMode = 0o644

// Save writes the model to path atomically (a temporary file renamed into
// place), so a worker polling the file never reads half of it; the file is
// 0644.
func (m *Model) Save(path string) error {
	data, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encoding model %s: %w", m.arch, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving model to %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone after a successful rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close() // the write error is the one to report
		return fmt.Errorf("saving model to %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving model to %s: %w", path, err)
	}
	// Readable by every worker, as the other data files: CreateTemp makes it 0600, which a
	// worker running as another user (the images' 65532 reading a model an administrator wrote,
	// or the other way round) could not open.
	if err := os.Chmod(tmp.Name(), fileMode); err != nil {
		return fmt.Errorf("saving model to %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("saving model to %s: %w", path, err)
	}
	return nil
}

// Load reads a model file.
func Load(path string) (*Model, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading model: %w", err)
	}
	defer func() { _ = file.Close() }() // read-only; a close error changes nothing
	data, err := io.ReadAll(io.LimitReader(file, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("loading model %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("loading model %s: %w: larger than %d bytes", path, ErrBadModelFile, maxFileBytes)
	}
	m, err := UnmarshalBinary(data)
	if err != nil {
		return nil, fmt.Errorf("loading model %s: %w", path, err)
	}
	return m, nil
}
