package datasetindex

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// lineScanner counts samples in a byte stream fed in arbitrary pieces. It carries everything it
// needs about the unterminated last line (length, whether it has content, the first bytes of a
// character split between pieces), so feeding a file in any split gives the same count and the
// same error as feeding it whole. That equivalence is what makes counting only appended bytes
// correct, and FuzzCounterIncremental checks it.
//
// A line is blank when it consists of whitespace only (unicode.IsSpace: spaces, tabs, "\r" of a
// CRLF line end, NBSP, ...). Blank lines are not samples, because a trailing empty line or an
// editor's stray spaces are not data and counting them would make the number depend on the tool
// that wrote the file.
//
// Errors are reported at the first offending byte in file order (a NUL byte, invalid UTF-8, or
// the byte that makes a line longer than the limit), so they too do not depend on the split.
type lineScanner struct {
	format        Format
	maxLineLength int64

	// offset is the file offset of the next byte fed.
	offset int64
	// lines counts newline-terminated lines; samples and headerSeen describe those lines only,
	// so that the unterminated last line can be counted without being committed.
	lines      int64
	samples    int
	headerSeen bool

	// The unterminated last line so far.
	lineLength int64
	hasContent bool
	// partialRune holds the leading bytes of a character whose remaining bytes have not been
	// fed yet; at most utf8.UTFMax-1 of them.
	partialRune  [utf8.UTFMax]byte
	partialBytes int
}

// feed scans data, which continues the stream at s.offset.
func (s *lineScanner) feed(data []byte) error {
	for len(data) > 0 {
		end := bytes.IndexByte(data, '\n')
		segment := data
		if end >= 0 {
			segment = data[:end]
		}
		if err := s.extendLine(segment); err != nil {
			return err
		}
		if end < 0 {
			return nil
		}
		if err := s.endLine(); err != nil {
			return err
		}
		data = data[end+1:]
	}
	return nil
}

// extendLine scans segment, a piece of the current line without its newline.
func (s *lineScanner) extendLine(segment []byte) error {
	// Only the bytes within the length limit are examined, so an earlier bad byte is reported
	// before the excess length, whatever the split.
	tooLong := s.lineLength+int64(len(segment)) > s.maxLineLength
	if tooLong {
		segment = segment[:max(0, s.maxLineLength-s.lineLength)]
	}
	text := segment
	nul := bytes.IndexByte(segment, 0)
	if nul >= 0 {
		text = segment[:nul]
	}
	if err := s.scanText(text); err != nil {
		return err
	}
	if nul >= 0 {
		if s.partialBytes > 0 {
			// NUL cannot continue a multi-byte character, so the character is the first fault.
			return s.invalidUTF8(s.offset - int64(s.partialBytes))
		}
		return fmt.Errorf("line %d has a NUL byte at file offset %d: %w", s.lines+1, s.offset, ErrBinary)
	}
	if tooLong {
		return fmt.Errorf("line %d is longer than the limit of %d bytes: %w", s.lines+1, s.maxLineLength, ErrTooLarge)
	}
	return nil
}

// scanText checks that text (free of NUL and newline) continues the current line as valid UTF-8
// and notes whether the line has content, advancing offset and lineLength over it.
func (s *lineScanner) scanText(text []byte) error {
	// First complete a character split across pieces, one byte at a time: utf8.FullRune turns
	// true as soon as the bytes are either a whole character or certainly invalid.
	for s.partialBytes > 0 && len(text) > 0 {
		s.partialRune[s.partialBytes] = text[0]
		s.partialBytes++
		text = text[1:]
		s.advance(1)
		candidate := s.partialRune[:s.partialBytes]
		if !utf8.FullRune(candidate) {
			continue
		}
		r, size := utf8.DecodeRune(candidate)
		if r == utf8.RuneError && size == 1 {
			return s.invalidUTF8(s.offset - int64(len(candidate)))
		}
		s.partialBytes = 0
		s.noteContent(r)
	}
	if s.partialBytes > 0 {
		// text ran out before the split character was complete; it stays pending.
		return nil
	}
	// Decode character by character only until the line is known to have content, which is
	// usually its first byte; after that only validity matters and utf8.Valid is much faster.
	for len(text) > 0 && !s.hasContent {
		if c := text[0]; c < utf8.RuneSelf {
			s.noteContent(rune(c))
			text = text[1:]
			s.advance(1)
			continue
		}
		if !utf8.FullRune(text) {
			break
		}
		r, size := utf8.DecodeRune(text)
		if r == utf8.RuneError && size == 1 {
			return s.invalidUTF8(s.offset)
		}
		s.noteContent(r)
		text = text[size:]
		s.advance(int64(size))
	}
	complete := completeRunesLength(text)
	if !utf8.Valid(text[:complete]) {
		return s.invalidUTF8(s.offset + int64(firstInvalidUTF8(text[:complete])))
	}
	s.advance(int64(len(text)))
	s.partialBytes = copy(s.partialRune[:], text[complete:])
	return nil
}

// endLine accounts for the newline at s.offset that ends the current line.
func (s *lineScanner) endLine() error {
	if s.partialBytes > 0 {
		return s.invalidUTF8(s.offset - int64(s.partialBytes))
	}
	if s.hasContent {
		if s.format == FormatCSV && !s.headerSeen {
			s.headerSeen = true
		} else {
			s.samples++
		}
	}
	s.lines++
	s.offset++
	s.lineLength = 0
	s.hasContent = false
	return nil
}

// count is the number of samples including the unterminated last line, which is a sample too
// once it has content. It is not committed to samples: when the line is later completed it is
// counted by endLine, once.
func (s *lineScanner) count() int {
	if s.hasContent && (s.format == FormatTxt || s.headerSeen) {
		return s.samples + 1
	}
	return s.samples
}

// lineStart is the file offset where the current line begins.
func (s *lineScanner) lineStart() int64 {
	return s.offset - s.lineLength
}

func (s *lineScanner) advance(n int64) {
	s.offset += n
	s.lineLength += n
}

func (s *lineScanner) noteContent(r rune) {
	if !unicode.IsSpace(r) {
		s.hasContent = true
	}
}

func (s *lineScanner) invalidUTF8(at int64) error {
	return fmt.Errorf("line %d has invalid UTF-8 at file offset %d: %w", s.lines+1, at, ErrBinary)
}

// completeRunesLength returns the length of b without a trailing character that is cut short
// but valid so far, which the next piece may complete.
func completeRunesLength(b []byte) int {
	// A character is at most utf8.UTFMax bytes, so a cut one starts within the last UTFMax-1.
	for i := len(b) - 1; i >= 0 && i >= len(b)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}

// firstInvalidUTF8 returns the index of the first byte of b that does not start a valid
// character; b must contain one.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}
