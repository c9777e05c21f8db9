package datasetindex

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
)

const (
	// DefaultMaxFileSize bounds the work of one count; index files list sample paths, so even
	// millions of samples stay far below it.
	DefaultMaxFileSize int64 = 1 << 30
	// DefaultMaxLineLength bounds the memory a line may need; an index line is a path or a CSV
	// row, so a longer line means the file is not an index file.
	DefaultMaxLineLength = 1 << 20

	// fingerprintWindow is the size of each of the two regions whose digests detect a file that
	// was rewritten in place without shrinking.
	fingerprintWindow = 4 << 10
	// readChunk is how much Update reads at a time: big enough for few system calls, small
	// enough to allocate per Update.
	readChunk = 64 << 10
)

// Options bound the resources one Update may use. Zero or negative values mean the defaults.
type Options struct {
	// MaxFileSize is the largest index file counted, in bytes; larger files fail with ErrTooLarge.
	MaxFileSize int64
	// MaxLineLength is the longest line accepted, in bytes without the newline; a longer line
	// fails with ErrTooLarge naming the line.
	MaxLineLength int
}

func (o Options) withDefaults() Options {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = DefaultMaxLineLength
	}
	return o
}

// CounterState is what a Counter knows about its file, for the LC to persist across restarts.
// It is small (no file content beyond three bytes of a split character) and JSON-serialisable.
type CounterState struct {
	// Format the state was computed for; a state restored for another format is discarded.
	Format Format `json:"format"`
	// Device and Inode identify the file that was read; another file at the same path is
	// recounted. Device numbers of some filesystems change across reboots, which only costs a
	// recount.
	Device uint64 `json:"device"`
	Inode  uint64 `json:"inode"`
	// Offset is how many bytes of the file have been read, including the unterminated last line.
	Offset int64 `json:"offset"`
	// Lines is the number of newline-terminated lines read; Samples and HeaderSeen describe
	// those lines only.
	Lines      int64 `json:"lines"`
	Samples    int   `json:"samples"`
	HeaderSeen bool  `json:"headerSeen,omitempty"`
	// TailLength, TailHasContent and TailPartialRune describe the unterminated last line, which
	// is counted in Count but not in Samples, so that completing it later does not count it twice.
	TailLength      int64  `json:"tailLength,omitempty"`
	TailHasContent  bool   `json:"tailHasContent,omitempty"`
	TailPartialRune []byte `json:"tailPartialRune,omitempty"`
	// HeadDigest and EndDigest are SHA-256 digests of the first 4 KiB read and of the 4 KiB
	// before Offset; a difference means the file was rewritten in place.
	HeadDigest []byte `json:"headDigest,omitempty"`
	EndDigest  []byte `json:"endDigest,omitempty"`
	// Count is what Update last returned without error, and HasCount whether it ever did. The
	// LC should persist the state only once that count has been reported (handed to its durable
	// outbox): Update reports no change against a restored count.
	Count    int  `json:"count"`
	HasCount bool `json:"hasCount"`
}

// Counter counts samples of one index file incrementally.
//
// Each Update reads only the bytes appended since the previous one, after checking cheaply
// (identity, size, digests of at most 8 KiB) that the bytes already read are unchanged; a
// rewritten file is recounted from its start. The check cannot see an in-place change that
// keeps the file's inode and size and touches neither its first 4 KiB nor the 4 KiB before the
// previous offset: index files are appended to or replaced wholesale, not patched in the middle.
//
// Memory is bounded by one read buffer plus 8 KiB, whatever the file holds. A Counter is safe
// for concurrent use.
type Counter struct {
	format Format
	opts   Options

	mu    sync.Mutex
	state CounterState
	// scannedBytes and fingerprintBytes count what Updates read, so tests can prove that growth
	// is counted from the new bytes only.
	scannedBytes     int64
	fingerprintBytes int64
}

// NewCounter returns a Counter that has read nothing yet; its first Update reads the whole file
// and reports a change, even for an empty file.
func NewCounter(format Format, opts Options) *Counter {
	return &Counter{format: format, opts: opts.withDefaults(), state: CounterState{Format: format}}
}

// RestoreCounter returns a Counter that continues from st, as persisted from State. A state
// that does not fit the format or the options (its last line is longer than MaxLineLength
// allows now) or is inconsistent (a damaged record) is not trusted: its file is recounted from
// the start, keeping only the last count so that changed stays meaningful.
func RestoreCounter(format Format, opts Options, st CounterState) *Counter {
	c := NewCounter(format, opts)
	st = st.clone()
	if st.Format != format || st.TailLength > int64(c.opts.MaxLineLength) || !st.consistent() {
		st = CounterState{Format: format, Count: st.Count, HasCount: st.HasCount}
	}
	c.state = st
	return c
}

// State returns a copy of the counter's state, to persist.
func (c *Counter) State() CounterState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.clone()
}

// Update brings the count up to date with the file at path (already resolved) and returns the
// count and whether it changed since the last Update.
//
// path should come from Resolver.Resolve: it is opened without following any symlink and must
// name a regular file. On error the previous count stays the reference for changed; the counter
// keeps what it verified before the failing line, so retrying a file that stays broken re-reads
// at most that line.
func (c *Counter) Update(path string) (count int, changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.format.validate(); err != nil {
		return 0, false, err
	}
	file, info, err := openIndexFile(path)
	if err != nil {
		return 0, false, err
	}
	// The file is only read, so a failing close loses nothing worth reporting.
	defer func() { _ = file.Close() }()
	size := info.Size()
	if size > c.opts.MaxFileSize {
		return 0, false, fmt.Errorf("index file %s is %d bytes, more than the limit of %d: %w",
			path, size, c.opts.MaxFileSize, ErrTooLarge)
	}
	device, inode := fileIdentity(info)

	state := c.state.clone()
	// head and end hold the verified file bytes that the new digests cover: the first up to
	// 4 KiB, and the up to 4 KiB before the offset.
	var head, end []byte
	rewritten := state.Device != device || state.Inode != inode || size < state.Offset
	if !rewritten && state.Offset > 0 {
		head, end, err = c.readWindows(file, state.Offset)
		if err != nil {
			return 0, false, fmt.Errorf("re-reading the start and end of what was counted in %s: %w", path, err)
		}
		rewritten = !bytes.Equal(digest(head), state.HeadDigest) || !bytes.Equal(digest(end), state.EndDigest)
	}
	if rewritten {
		state = CounterState{Format: c.format, Device: device, Inode: inode, Count: state.Count, HasCount: state.HasCount}
		head, end = nil, nil
	}

	scanner := state.scanner(int64(c.opts.MaxLineLength))
	if size > state.Offset {
		head, end, err = c.scan(file, scanner, size, head, end)
		if err != nil {
			c.commitBeforeFailure(file, &state, scanner)
			return 0, false, fmt.Errorf("counting samples in %s: %w", path, err)
		}
		state.setScanner(scanner)
		state.HeadDigest = digest(head)
		state.EndDigest = digest(end)
	}

	count = scanner.count()
	changed = !state.HasCount || count != state.Count
	state.Count = count
	state.HasCount = true
	c.state = state
	return count, changed, nil
}

// scan feeds the file from scanner.offset up to size to scanner and returns head and end
// extended by the bytes read.
func (c *Counter) scan(file *os.File, scanner *lineScanner, size int64, head, end []byte) ([]byte, []byte, error) {
	// A small append, the common case, needs only a small buffer.
	buf := make([]byte, min(readChunk, size-scanner.offset))
	// Reading stops at the size seen by fstat, which bounds the work by MaxFileSize even while
	// a writer keeps appending; what it appends meanwhile is counted next time.
	reader := io.NewSectionReader(file, scanner.offset, size-scanner.offset)
	for {
		n, err := reader.Read(buf)
		if n > 0 {
			c.scannedBytes += int64(n)
			if scanErr := scanner.feed(buf[:n]); scanErr != nil {
				return nil, nil, scanErr
			}
			head = appendUpTo(head, buf[:n], fingerprintWindow)
			end = keepLast(end, buf[:n], fingerprintWindow)
		}
		if errors.Is(err, io.EOF) {
			// Also reached early if the file was truncated meanwhile: the offset then records
			// what was actually read, and the next Update sees the shorter size.
			return head, end, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading at offset %d: %w", scanner.offset, err)
		}
	}
}

// commitBeforeFailure keeps the lines verified before the line that failed, so that the next
// Update of a file that stays broken re-reads only that line (at most MaxLineLength bytes plus
// one read) instead of everything appended since the last success. It keeps the old state if the
// digests for the new offset cannot be read.
func (c *Counter) commitBeforeFailure(file *os.File, state *CounterState, scanner *lineScanner) {
	offset := scanner.lineStart()
	head, end, err := c.readWindows(file, offset)
	if err != nil {
		return
	}
	state.Offset = offset
	state.Lines = scanner.lines
	state.Samples = scanner.samples
	state.HeaderSeen = scanner.headerSeen
	state.TailLength = 0
	state.TailHasContent = false
	state.TailPartialRune = nil
	state.HeadDigest = digest(head)
	state.EndDigest = digest(end)
	// Count and HasCount are still those of the last successful Update, the reference for changed.
	c.state = *state
}

// readWindows reads the regions the digests of offset cover.
func (c *Counter) readWindows(file *os.File, offset int64) (head, end []byte, err error) {
	head = make([]byte, min(offset, fingerprintWindow))
	if _, err := file.ReadAt(head, 0); err != nil {
		return nil, nil, fmt.Errorf("reading the first %d bytes: %w", len(head), err)
	}
	endStart := max(0, offset-fingerprintWindow)
	if endStart == 0 {
		// The two regions are the same bytes: read them once, but return separate copies, as the
		// caller extends them differently.
		c.fingerprintBytes += int64(len(head))
		return head, bytes.Clone(head), nil
	}
	end = make([]byte, offset-endStart)
	if _, err := file.ReadAt(end, endStart); err != nil {
		return nil, nil, fmt.Errorf("reading %d bytes at offset %d: %w", len(end), endStart, err)
	}
	c.fingerprintBytes += int64(len(head) + len(end))
	return head, end, nil
}

// openIndexFile opens path without following symlinks and checks that it is a regular file.
func openIndexFile(path string) (*os.File, os.FileInfo, error) {
	file, err := hostfs.OpenNoSymlinks(path)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			return nil, nil, fmt.Errorf("opening index file %s: %w: %w", path, ErrNotFound, err)
		case errors.Is(err, syscall.ELOOP), errors.Is(err, hostfs.ErrOutside):
			return nil, nil, fmt.Errorf("opening index file %s: the path contains a symlink, "+
				"so it changed since it was resolved or was never resolved: %w", path, ErrOutsideRoots)
		default:
			return nil, nil, fmt.Errorf("opening index file %s: %w", path, err)
		}
	}
	info, err := file.Stat()
	if err != nil {
		_ = file.Close() // the stat error is the one worth reporting
		return nil, nil, fmt.Errorf("inspecting index file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		_ = file.Close() // nothing was read; the type is the problem to report
		return nil, nil, fmt.Errorf("index file %s is not a regular file (mode %s)", path, info.Mode().Type())
	}
	return file, info, nil
}

func fileIdentity(info os.FileInfo) (device, inode uint64) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		// Unreachable on Unix; zero identities only cost a recount when the state is restored.
		return 0, 0
	}
	// The conversions matter where Dev is an int32 (Darwin).
	return uint64(st.Dev), uint64(st.Ino)
}

func digest(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// appendUpTo appends from data to dst until dst holds limit bytes.
func appendUpTo(dst, data []byte, limit int) []byte {
	if len(dst) >= limit {
		return dst
	}
	return append(dst, data[:min(len(data), limit-len(dst))]...)
}

// keepLast returns the last limit bytes of dst followed by data, reusing dst's memory.
func keepLast(dst, data []byte, limit int) []byte {
	if len(data) >= limit {
		return append(dst[:0], data[len(data)-limit:]...)
	}
	if drop := len(dst) + len(data) - limit; drop > 0 {
		dst = dst[:copy(dst, dst[drop:])]
	}
	return append(dst, data...)
}

func (st CounterState) clone() CounterState {
	st.TailPartialRune = bytes.Clone(st.TailPartialRune)
	st.HeadDigest = bytes.Clone(st.HeadDigest)
	st.EndDigest = bytes.Clone(st.EndDigest)
	return st
}

// consistent reports whether st could have been produced by a Counter, so that a damaged record
// is recounted rather than trusted.
func (st CounterState) consistent() bool {
	if st.Offset == 0 {
		return st.Lines == 0 && st.Samples == 0 && !st.HeaderSeen && st.TailLength == 0 &&
			!st.TailHasContent && len(st.TailPartialRune) == 0
	}
	return st.Offset > 0 && st.Lines >= 0 && st.Samples >= 0 && int64(st.Samples) <= st.Lines &&
		st.TailLength >= 0 && st.Lines+st.TailLength <= st.Offset &&
		int64(len(st.TailPartialRune)) <= st.TailLength && len(st.TailPartialRune) < utf8.UTFMax &&
		(len(st.TailPartialRune) == 0 || !utf8.FullRune(st.TailPartialRune)) &&
		(st.Format == FormatCSV || !st.HeaderSeen) &&
		len(st.HeadDigest) == sha256.Size && len(st.EndDigest) == sha256.Size
}

func (st *CounterState) scanner(maxLineLength int64) *lineScanner {
	s := &lineScanner{
		format:        st.Format,
		maxLineLength: maxLineLength,
		offset:        st.Offset,
		lines:         st.Lines,
		samples:       st.Samples,
		headerSeen:    st.HeaderSeen,
		lineLength:    st.TailLength,
		hasContent:    st.TailHasContent,
	}
	s.partialBytes = copy(s.partialRune[:], st.TailPartialRune)
	return s
}

func (st *CounterState) setScanner(s *lineScanner) {
	st.Offset = s.offset
	st.Lines = s.lines
	st.Samples = s.samples
	st.HeaderSeen = s.headerSeen
	st.TailLength = s.lineLength
	st.TailHasContent = s.hasContent
	st.TailPartialRune = nil
	if s.partialBytes > 0 {
		st.TailPartialRune = bytes.Clone(s.partialRune[:s.partialBytes])
	}
}
