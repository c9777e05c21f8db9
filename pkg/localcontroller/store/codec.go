package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// ErrCorrupt is wrapped by every error that reports a damaged record (see CorruptError).
var ErrCorrupt = errors.New("damaged record")

// CorruptError reports a record whose stored bytes fail their checks. It names the record so an
// operator can tell which resource, state record or report was lost.
type CorruptError struct {
	// Bucket is the part of the store holding the record: "resources", "state", "outbox" or "meta".
	Bucket string
	// Key names the record in human-readable form: kind/namespace/name, namespace/key, or the
	// outbox sequence number.
	Key string
	// Reason says which check failed.
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s record %q is damaged: %s", e.Bucket, e.Key, e.Reason)
}

// Unwrap lets callers test for any damage with errors.Is(err, ErrCorrupt).
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// frameFormat is the first byte of every stored value. Bumping it lets a later binary tell old
// values from new ones instead of misreading them.
const frameFormat byte = 1

// frameHeaderLen is format (1) + record kind (1) + CRC32-C (4).
const frameHeaderLen = 6

// recordKind is stored in every frame so a value written for one purpose is never accepted as
// another (for instance a tombstone read as a live resource after a bug or bit flip).
type recordKind byte

const (
	recordResource  recordKind = 1
	recordTombstone recordKind = 2
	recordState     recordKind = 3
	recordOutbox    recordKind = 4
	recordMeta      recordKind = 5
	// recordOutboxTagged is an outbox entry that carries its class and stream (EnqueueOptions);
	// entries of the LC's own class without a stream keep the plain recordOutbox form.
	recordOutboxTagged recordKind = 6
)

func (k recordKind) String() string {
	switch k {
	case recordResource:
		return "resource"
	case recordTombstone:
		return "tombstone"
	case recordState:
		return "state"
	case recordOutbox:
		return "outbox"
	case recordMeta:
		return "meta"
	case recordOutboxTagged:
		return "tagged outbox"
	default:
		return fmt.Sprintf("unknown(%d)", byte(k))
	}
}

// Castagnoli rather than IEEE because it is hardware-accelerated on amd64 and arm64, which
// matters on small edge CPUs where every outbox entry is checksummed.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encodeFrame returns a new buffer holding the header and the concatenated body parts. The
// buffer is freshly allocated because bbolt keeps a reference to it until the commit.
func encodeFrame(kind recordKind, parts ...[]byte) []byte {
	size := frameHeaderLen
	for _, p := range parts {
		size += len(p)
	}
	buf := make([]byte, frameHeaderLen, size)
	buf[0] = frameFormat
	buf[1] = byte(kind)
	for _, p := range parts {
		buf = append(buf, p...)
	}
	binary.BigEndian.PutUint32(buf[2:6], frameChecksum(buf[0], buf[1], buf[frameHeaderLen:]))
	return buf
}

// frameChecksum covers the format and kind bytes as well as the body, so a flipped kind byte is
// caught as damage rather than reported as a kind mismatch.
func frameChecksum(format, kind byte, body []byte) uint32 {
	sum := crc32.Update(0, crcTable, []byte{format, kind})
	return crc32.Update(sum, crcTable, body)
}

// decodeFrame checks raw and returns its kind and a copy of its body. The copy is what makes it
// safe to return values from a bbolt transaction: raw points into the memory map, which is only
// valid until the transaction ends. The error is a plain reason; callers wrap it in a
// CorruptError that names the key.
func decodeFrame(raw []byte) (recordKind, []byte, error) {
	kind, body, err := checkFrame(raw)
	if err != nil {
		return 0, nil, err
	}
	out := make([]byte, len(body))
	copy(out, body)
	return kind, out, nil
}

// checkFrame is decodeFrame without the copy: the body it returns points into raw, so it must
// not outlive the transaction raw was read in.
func checkFrame(raw []byte) (recordKind, []byte, error) {
	if len(raw) < frameHeaderLen {
		return 0, nil, fmt.Errorf("value is %d bytes, shorter than the %d-byte frame header", len(raw), frameHeaderLen)
	}
	if raw[0] != frameFormat {
		return 0, nil, fmt.Errorf("unknown frame format %d (this binary reads format %d)", raw[0], frameFormat)
	}
	stored := binary.BigEndian.Uint32(raw[2:6])
	body := raw[frameHeaderLen:]
	if computed := frameChecksum(raw[0], raw[1], body); computed != stored {
		return 0, nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", stored, computed)
	}
	return recordKind(raw[1]), body, nil
}

// Tuple keys: each part is written with every 0x00 byte escaped as 0x00 0xFF and is terminated
// by 0x00 0x01. No part can contain an unescaped terminator, so distinct tuples never encode to
// the same key, and because the terminator sorts below every escaped or ordinary byte, byte
// order of keys equals part-by-part order of the tuples (so a bbolt cursor lists resources
// sorted by kind, namespace, name, and a kind's resources share a prefix).
const (
	tupleEscape     byte = 0x00
	tupleEscapedNul byte = 0xFF
	tupleTerminator byte = 0x01
)

func appendTuplePart(dst []byte, part string) []byte {
	for i := 0; i < len(part); i++ {
		c := part[i]
		dst = append(dst, c)
		if c == tupleEscape {
			dst = append(dst, tupleEscapedNul)
		}
	}
	return append(dst, tupleEscape, tupleTerminator)
}

func encodeTuple(parts ...string) []byte {
	size := 0
	for _, p := range parts {
		size += len(p) + 2
	}
	key := make([]byte, 0, size)
	for _, p := range parts {
		key = appendTuplePart(key, p)
	}
	return key
}

// decodeTuple parses a key made by encodeTuple and requires exactly want parts.
func decodeTuple(key []byte, want int) ([]string, error) {
	parts := make([]string, 0, want)
	var current []byte
	open := false // bytes seen since the last terminator
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c != tupleEscape {
			current = append(current, c)
			open = true
			continue
		}
		if i+1 == len(key) {
			return nil, fmt.Errorf("key ends inside an escape sequence at offset %d", i)
		}
		i++
		switch key[i] {
		case tupleEscapedNul:
			current = append(current, 0)
			open = true
		case tupleTerminator:
			parts = append(parts, string(current))
			current = current[:0]
			open = false
		default:
			return nil, fmt.Errorf("invalid escape byte 0x%02x at offset %d", key[i], i)
		}
	}
	if open {
		return nil, errors.New("key ends with an unterminated part")
	}
	if len(parts) != want {
		return nil, fmt.Errorf("key has %d parts, want %d", len(parts), want)
	}
	return parts, nil
}

func encodeUint64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
