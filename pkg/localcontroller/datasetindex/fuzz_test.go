package datasetindex

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// fuzzOptions keep the line limit small so that fuzzed content reaches it.
var fuzzOptions = Options{MaxFileSize: 1 << 20, MaxLineLength: 24}

// FuzzCounterIncremental appends content to a file in the pieces cuts describes, counting after
// each piece, and checks that the final count (or error) equals both a count of the whole file by
// a fresh Counter and an independent reference count. A cut byte's low 7 bits give the length of
// the next piece; a set high bit persists the state through JSON and restores it first.
func FuzzCounterIncremental(f *testing.F) {
	f.Add([]byte("a\nb\nc"), []byte{1, 2, 3}, false)
	f.Add([]byte("name,label\r\nx,1\r\n\r\ny,0"), []byte{0x81, 5, 0x83}, true)
	f.Add([]byte("€uro\n\xe2\x82\xac\n\xe2\x82"), []byte{2, 1, 1, 0x81}, false)
	f.Add([]byte("ok\nbad\x00line\n"), []byte{4, 1}, false)
	f.Add([]byte("short\nthis line is longer than twenty-four bytes\nx\n"), []byte{10, 10, 10}, false)
	f.Add([]byte("  \n\t\n\u00a0\nh\n"), []byte{}, true)
	f.Add([]byte("\xff\n"), []byte{0}, false)
	f.Add([]byte("a\n\xed\xa0\x80\n"), []byte{3, 1}, false)
	f.Add([]byte("\xf0\x9f\x98"), []byte{1, 1, 1}, true)

	f.Fuzz(func(t *testing.T, content, cuts []byte, csv bool) {
		format := FormatTxt
		if csv {
			format = FormatCSV
		}
		path := filepath.Join(tempDir(t), "index")
		require.NoError(t, os.WriteFile(path, nil, 0o644))

		incremental := NewCounter(format, fuzzOptions)
		rest := content
		for _, cut := range cuts {
			if cut&0x80 != 0 {
				record, err := json.Marshal(incremental.State())
				require.NoError(t, err)
				var st CounterState
				require.NoError(t, json.Unmarshal(record, &st))
				incremental = RestoreCounter(format, fuzzOptions, st)
			}
			piece := int(cut&0x7f) % (len(rest) + 1)
			appendTo(string(rest[:piece]))(t, path)
			rest = rest[piece:]
			// Errors in between are fine (a line may be broken); the final result is compared.
			_, _, _ = incremental.Update(path)
		}
		appendTo(string(rest))(t, path)
		gotCount, _, gotErr := incremental.Update(path)

		wholeCount, _, wholeErr := NewCounter(format, fuzzOptions).Update(path)
		if wholeErr != nil {
			require.Error(t, gotErr, "a fresh count fails with %v", wholeErr)
			require.Equal(t, wholeErr.Error(), gotErr.Error(), "the error must not depend on how the file grew")
		} else {
			require.NoError(t, gotErr)
			require.Equal(t, wholeCount, gotCount)
		}

		wantCount, wantOK := referenceCount(content, format, fuzzOptions.MaxLineLength)
		require.Equal(t, wantOK, wholeErr == nil, "reference and counter disagree on validity (%v)", wholeErr)
		if wantOK {
			require.Equal(t, wantCount, wholeCount)
		}
	})
}

// referenceCount is the counting rule written the obvious way, on the whole content at once.
func referenceCount(content []byte, format Format, maxLineLength int) (count int, ok bool) {
	lines := bytes.Split(content, []byte("\n"))
	headerSeen := false
	for i, line := range lines {
		if len(line) > maxLineLength || bytes.IndexByte(line, 0) >= 0 {
			return 0, false
		}
		if i == len(lines)-1 {
			// The unterminated last line may end in a character whose other bytes are yet to come.
			line = withoutIncompleteCharacter(line)
		}
		if !utf8.Valid(line) {
			return 0, false
		}
		if len(bytes.TrimFunc(line, unicode.IsSpace)) == 0 {
			continue
		}
		if format == FormatCSV && !headerSeen {
			headerSeen = true
			continue
		}
		count++
	}
	return count, true
}

func withoutIncompleteCharacter(line []byte) []byte {
	for cut := 1; cut < utf8.UTFMax && cut <= len(line); cut++ {
		suffix := line[len(line)-cut:]
		if utf8.RuneStart(suffix[0]) {
			if !utf8.FullRune(suffix) {
				return line[:len(line)-cut]
			}
			return line
		}
	}
	return line
}

// FuzzLineScannerSplit is the in-memory core of FuzzCounterIncremental, fast enough for millions
// of inputs: feeding content in the pieces cuts describes must give the same count, or the same
// error, as feeding it whole, and the same as the reference count.
func FuzzLineScannerSplit(f *testing.F) {
	f.Add([]byte("a\nb\nc"), []byte{1, 2, 3}, false)
	f.Add([]byte("h\r\nx\r\n\xe2\x82\xac\n"), []byte{4, 3, 1, 1}, true)
	f.Add([]byte("00\xea\x00"), []byte{3}, false)
	f.Add([]byte("x\xe2\x82\n"), []byte{2, 0, 1}, false)

	f.Fuzz(func(t *testing.T, content, cuts []byte, csv bool) {
		format := FormatTxt
		if csv {
			format = FormatCSV
		}
		maxLine := int64(fuzzOptions.MaxLineLength)
		whole := &lineScanner{format: format, maxLineLength: maxLine}
		wholeErr := whole.feed(content)

		split := &lineScanner{format: format, maxLineLength: maxLine}
		var splitErr error
		rest := content
		for _, cut := range cuts {
			piece := int(cut) % (len(rest) + 1)
			if splitErr = split.feed(rest[:piece]); splitErr != nil {
				break
			}
			rest = rest[piece:]
		}
		if splitErr == nil {
			splitErr = split.feed(rest)
		}

		if wholeErr != nil {
			require.Error(t, splitErr, "feeding it whole fails with %v", wholeErr)
			require.Equal(t, wholeErr.Error(), splitErr.Error())
		} else {
			require.NoError(t, splitErr)
			require.Equal(t, whole.count(), split.count())
			require.Equal(t, whole.offset, split.offset)
			require.Equal(t, int64(len(content)), whole.offset)
		}
		wantCount, wantOK := referenceCount(content, format, fuzzOptions.MaxLineLength)
		require.Equal(t, wantOK, wholeErr == nil, "reference and scanner disagree on validity (%v)", wholeErr)
		if wantOK {
			require.Equal(t, wantCount, whole.count())
		}
	})
}
