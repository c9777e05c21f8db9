package datasetindex

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// anyScanned disables the check of how many bytes a step scanned.
const anyScanned = -1

// tempDir returns a fresh directory without symlinks in its path, as Update refuses them.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	return dir
}

// fileAction changes the index file between two Updates.
type fileAction func(t *testing.T, path string)

// write replaces the file's content in place: same inode, truncated first.
func write(content string) fileAction {
	return func(t *testing.T, path string) {
		t.Helper()
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
}

func appendTo(content string) fileAction {
	return func(t *testing.T, path string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		require.NoError(t, err)
		_, err = f.WriteString(content)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
}

// replace puts a new file (a new inode) in place by rename, as tools that regenerate an index do.
func replace(content string) fileAction {
	return func(t *testing.T, path string) {
		t.Helper()
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
		require.NoError(t, os.Rename(tmp, path))
	}
}

// overwriteAt changes bytes in place without truncating.
func overwriteAt(offset int64, content string) fileAction {
	return func(t *testing.T, path string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte(content), offset)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
}

type updateStep struct {
	action      fileAction
	wantCount   int
	wantChanged bool
	// wantErr, when set, is the sentinel the error must wrap; wantErrText must appear in it.
	wantErr     error
	wantErrText string
	// wantScanned is how many bytes this Update fed to the line scanner, or anyScanned.
	wantScanned int64
}

// lines returns n distinct newline-terminated lines.
func lines(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s/%06d.jpg\n", prefix, i)
	}
	return b.String()
}

func TestCounterUpdate(t *testing.T) {
	middleSamples := strings.Repeat("m\n", 1000)
	middleBlank := strings.Repeat("\n\n", 1000)
	// 5 KiB on either side of the middle: longer than a fingerprint window, so the digests
	// never see the middle.
	const edgeLines = 2560
	edges := strings.Repeat("e\n", edgeLines)
	thousand := lines("img", 1000)
	ten := lines("new", 10)
	bigGood := lines("img", 5000)

	cases := map[string]struct {
		format Format
		opts   Options
		steps  []updateStep
	}{
		"txt counts every line": {
			format: FormatTxt,
			steps:  []updateStep{{action: write("a\nb\nc\n"), wantCount: 3, wantChanged: true, wantScanned: 6}},
		},
		"txt blank and whitespace-only lines are not samples": {
			format: FormatTxt,
			steps: []updateStep{{
				action: write("a\n\n  \n\t\nb\n\u00a0\u3000\n\v\f\n"), wantCount: 2, wantChanged: true, wantScanned: anyScanned,
			}},
		},
		"txt CRLF line ends": {
			format: FormatTxt,
			steps:  []updateStep{{action: write("a\r\nb\r\n\r\n \r\n"), wantCount: 2, wantChanged: true, wantScanned: 11}},
		},
		"empty file is reported once": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write(""), wantCount: 0, wantChanged: true, wantScanned: 0},
				{wantCount: 0, wantChanged: false, wantScanned: 0},
			},
		},
		"unchanged file is not read again": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write(thousand), wantCount: 1000, wantChanged: true, wantScanned: int64(len(thousand))},
				{wantCount: 1000, wantChanged: false, wantScanned: 0},
			},
		},
		"csv header is not a sample": {
			format: FormatCSV,
			steps: []updateStep{{
				action: write("name,label\nx.jpg,1\ny.jpg,0\n"), wantCount: 2, wantChanged: true, wantScanned: anyScanned,
			}},
		},
		"csv header is the first non-blank line": {
			format: FormatCSV,
			steps:  []updateStep{{action: write("\n \r\nname\nx\n\ny\n"), wantCount: 2, wantChanged: true, wantScanned: anyScanned}},
		},
		"csv with only a header": {
			format: FormatCSV,
			steps: []updateStep{
				{action: write("name,label\n"), wantCount: 0, wantChanged: true, wantScanned: 11},
				{action: appendTo("a,1\n"), wantCount: 1, wantChanged: true, wantScanned: 4},
			},
		},
		"csv header completed across appends": {
			format: FormatCSV,
			steps: []updateStep{
				{action: write("name,la"), wantCount: 0, wantChanged: true, wantScanned: 7},
				{action: appendTo("bel\nx"), wantCount: 1, wantChanged: true, wantScanned: 5},
				{action: appendTo("\ny\n"), wantCount: 2, wantChanged: true, wantScanned: 3},
			},
		},
		"partial last line counts once when completed": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\nb"), wantCount: 2, wantChanged: true, wantScanned: 3},
				{action: appendTo("c\n"), wantCount: 2, wantChanged: false, wantScanned: 2},
				{action: appendTo("d"), wantCount: 3, wantChanged: true, wantScanned: 1},
				{action: appendTo("\n"), wantCount: 3, wantChanged: false, wantScanned: 1},
				{action: appendTo("\n"), wantCount: 3, wantChanged: false, wantScanned: 1},
			},
		},
		"blank partial last line becomes a sample": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\n  "), wantCount: 1, wantChanged: true, wantScanned: 4},
				{action: appendTo("x\n"), wantCount: 2, wantChanged: true, wantScanned: 2},
			},
		},
		"character split between appends": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\n\xe2\x82"), wantCount: 1, wantChanged: true, wantScanned: 4},
				{action: appendTo("\xac\n"), wantCount: 2, wantChanged: true, wantScanned: 2},
			},
		},
		"character split between appends, then the line ends": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\n\xe2\x82"), wantCount: 1, wantChanged: true, wantScanned: 4},
				{action: appendTo("\n"), wantErr: ErrBinary, wantErrText: "line 2 has invalid UTF-8 at file offset 2", wantScanned: 1},
			},
		},
		"character split between appends, then a NUL byte": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\n\xe2"), wantCount: 1, wantChanged: true, wantScanned: 3},
				{action: appendTo("\x00"), wantErr: ErrBinary, wantErrText: "line 2 has invalid UTF-8 at file offset 2", wantScanned: 1},
			},
		},
		"append growth reads only the new bytes": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write(thousand), wantCount: 1000, wantChanged: true, wantScanned: int64(len(thousand))},
				{action: appendTo(ten), wantCount: 1010, wantChanged: true, wantScanned: int64(len(ten))},
				{action: appendTo(ten), wantCount: 1020, wantChanged: true, wantScanned: int64(len(ten))},
			},
		},
		"truncation recounts": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\nb\nc\n"), wantCount: 3, wantChanged: true, wantScanned: 6},
				{action: write("x\n"), wantCount: 1, wantChanged: true, wantScanned: 2},
				{action: write(""), wantCount: 0, wantChanged: true, wantScanned: 0},
			},
		},
		"replacement by rename recounts the new file": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write(thousand), wantCount: 1000, wantChanged: true, wantScanned: int64(len(thousand))},
				// Same prefix and longer: without the inode check this would pass for an append.
				{action: replace(thousand + ten), wantCount: 1010, wantChanged: true, wantScanned: int64(len(thousand + ten))},
			},
		},
		"replacement by rename keeping size, start and end": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write(edges + middleSamples + edges), wantCount: 2*edgeLines + 1000, wantChanged: true, wantScanned: anyScanned},
				// Only the inode tells the files apart: both digests cover identical bytes.
				{action: replace(edges + middleBlank + edges), wantCount: 2 * edgeLines, wantChanged: true, wantScanned: anyScanned},
			},
		},
		"in-place rewrite of the same size at the start": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\nb\n"), wantCount: 2, wantChanged: true, wantScanned: 4},
				{action: overwriteAt(0, "\n\n"), wantCount: 1, wantChanged: true, wantScanned: 4},
			},
		},
		"in-place rewrite of the same size in the first 4 KiB of a large file": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write(bigGood), wantCount: 5000, wantChanged: true, wantScanned: int64(len(bigGood))},
				{action: overwriteAt(0, strings.Repeat(" ", 14)), wantCount: 4999, wantChanged: true, wantScanned: int64(len(bigGood))},
			},
		},
		"in-place rewrite of the same size before the offset": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write(bigGood), wantCount: 5000, wantChanged: true, wantScanned: int64(len(bigGood))},
				{action: overwriteAt(int64(len(bigGood)-16), strings.Repeat("\n", 16)), wantCount: 4999, wantChanged: true, wantScanned: int64(len(bigGood))},
			},
		},
		"in-place rewrite that grows the file": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\nb\n"), wantCount: 2, wantChanged: true, wantScanned: 4},
				{action: write("\n\nxyz\nq\nr\n"), wantCount: 3, wantChanged: true, wantScanned: 10},
			},
		},
		"in-place rewrite of the unchecked middle is not seen (documented limit)": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write(edges + middleSamples + edges), wantCount: 2*edgeLines + 1000, wantChanged: true, wantScanned: anyScanned},
				{action: overwriteAt(int64(len(edges)), middleBlank), wantCount: 2*edgeLines + 1000, wantChanged: false, wantScanned: 0},
			},
		},
		"oversized file": {
			format: FormatTxt,
			opts:   Options{MaxFileSize: 10},
			steps: []updateStep{
				{action: write("123456789\n"), wantCount: 1, wantChanged: true, wantScanned: 10},
				{action: appendTo("x"), wantErr: ErrTooLarge, wantErrText: "11 bytes, more than the limit of 10", wantScanned: 0},
				{action: write("1\n2\n"), wantCount: 2, wantChanged: true, wantScanned: 4},
			},
		},
		"NUL byte": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\nb\nc\x00d\n"), wantErr: ErrBinary, wantErrText: "line 3 has a NUL byte at file offset 5", wantScanned: anyScanned},
			},
		},
		"NUL byte in the unterminated last line": {
			format: FormatCSV,
			steps: []updateStep{
				{action: write("h\nb\x00"), wantErr: ErrBinary, wantErrText: "line 2 has a NUL byte", wantScanned: anyScanned},
			},
		},
		"invalid UTF-8": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("ok\n\xff\n"), wantErr: ErrBinary, wantErrText: "line 2 has invalid UTF-8 at file offset 3", wantScanned: anyScanned},
			},
		},
		"character cut short by the line end": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("ok\nx\xe2\x82\n"), wantErr: ErrBinary, wantErrText: "line 2 has invalid UTF-8 at file offset 4", wantScanned: anyScanned},
			},
		},
		"UTF-16 surrogate encoded in UTF-8": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("\xed\xa0\x80\n"), wantErr: ErrBinary, wantErrText: "line 1 has invalid UTF-8", wantScanned: anyScanned},
			},
		},
		"binary append after good lines, then replaced": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write("a\n"), wantCount: 1, wantChanged: true, wantScanned: 2},
				{action: appendTo("b\n\x00\n"), wantErr: ErrBinary, wantErrText: "line 3", wantScanned: 4},
				// Still broken: only the failing line is read again.
				{wantErr: ErrBinary, wantErrText: "line 3", wantScanned: 2},
				// The count reported last is 1, so a fixed file with one sample is no change.
				{action: replace("fixed\n"), wantCount: 1, wantChanged: false, wantScanned: 6},
			},
		},
		"broken large append is not read again on retry": {
			format: FormatTxt,
			steps: []updateStep{
				{action: write(bigGood + "\x00\n"), wantErr: ErrBinary, wantErrText: "line 5001", wantScanned: int64(len(bigGood)) + 2},
				{wantErr: ErrBinary, wantErrText: "line 5001", wantScanned: 2},
			},
		},
		"line longer than the limit": {
			format: FormatTxt,
			opts:   Options{MaxLineLength: 4},
			steps: []updateStep{
				{action: write("abcd\nefgh\n"), wantCount: 2, wantChanged: true, wantScanned: 10},
				{action: appendTo("abcde\n"), wantErr: ErrTooLarge, wantErrText: "line 3 is longer than the limit of 4 bytes", wantScanned: anyScanned},
			},
		},
		"unterminated last line longer than the limit": {
			format: FormatTxt,
			opts:   Options{MaxLineLength: 4},
			steps: []updateStep{
				{action: write("ab\nabcdefg"), wantErr: ErrTooLarge, wantErrText: "line 2 is longer", wantScanned: anyScanned},
			},
		},
		"line growing past the limit across appends": {
			format: FormatTxt,
			opts:   Options{MaxLineLength: 4},
			steps: []updateStep{
				{action: write("ab"), wantCount: 1, wantChanged: true, wantScanned: 2},
				{action: appendTo("cd"), wantCount: 1, wantChanged: false, wantScanned: 2},
				{action: appendTo("e"), wantErr: ErrTooLarge, wantErrText: "line 1 is longer", wantScanned: 1},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(tempDir(t), "index.txt")
			require.NoError(t, os.WriteFile(path, nil, 0o644))
			counter := NewCounter(tc.format, tc.opts)
			for i, step := range tc.steps {
				if step.action != nil {
					step.action(t, path)
				}
				scannedBefore := counter.scannedBytes
				count, changed, err := counter.Update(path)
				scanned := counter.scannedBytes - scannedBefore
				if step.wantErr != nil {
					require.ErrorIs(t, err, step.wantErr, "step %d", i)
					require.ErrorContains(t, err, step.wantErrText, "step %d", i)
					require.ErrorContains(t, err, path, "step %d: the error must name the file", i)
				} else {
					require.NoError(t, err, "step %d", i)
					require.Equal(t, step.wantCount, count, "step %d: count", i)
					require.Equal(t, step.wantChanged, changed, "step %d: changed", i)
				}
				if step.wantScanned != anyScanned {
					require.Equal(t, step.wantScanned, scanned, "step %d: bytes scanned", i)
				}
			}
		})
	}
}

func TestCounterChecksAtMostTwoWindows(t *testing.T) {
	path := filepath.Join(tempDir(t), "index.txt")
	content := lines("img", 10000)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	counter := NewCounter(FormatTxt, Options{})
	_, _, err := counter.Update(path)
	require.NoError(t, err)
	require.Zero(t, counter.fingerprintBytes, "a fresh count has nothing to verify")

	count, changed, err := counter.Update(path)
	require.NoError(t, err)
	require.Equal(t, 10000, count)
	require.False(t, changed)
	require.Equal(t, int64(2*fingerprintWindow), counter.fingerprintBytes)
}

func TestParseFormat(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    Format
		wantErr bool
	}{
		"txt":             {in: "txt", want: FormatTxt},
		"upper case":      {in: "TXT", want: FormatTxt},
		"csv":             {in: "csv", want: FormatCSV},
		"mixed case":      {in: "Csv", want: FormatCSV},
		"empty":           {in: "", wantErr: true},
		"other format":    {in: "json", wantErr: true},
		"surrounding spc": {in: " txt", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseFormat(tc.in)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrUnsupportedFormat)
				require.ErrorContains(t, err, fmt.Sprintf("%q", tc.in))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestCounterUnsupportedFormat(t *testing.T) {
	path := filepath.Join(tempDir(t), "index.json")
	require.NoError(t, os.WriteFile(path, []byte("a\n"), 0o644))
	_, _, err := NewCounter(Format("json"), Options{}).Update(path)
	require.ErrorIs(t, err, ErrUnsupportedFormat)
	require.ErrorContains(t, err, `"json"`)
}

func TestCounterRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := tempDir(t)
	regular := filepath.Join(dir, "index.txt")
	require.NoError(t, os.WriteFile(regular, []byte("a\n"), 0o644))
	link := filepath.Join(dir, "link.txt")
	require.NoError(t, os.Symlink(regular, link))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	subdir := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(subdir, 0o755))

	cases := map[string]struct {
		path     string
		wantErr  error
		wantText string
	}{
		"directory": {path: subdir, wantText: "not a regular file"},
		// Opening a FIFO must not wait for a writer.
		"fifo":         {path: fifo, wantText: "not a regular file"},
		"symlink":      {path: link, wantErr: ErrOutsideRoots, wantText: "contains a symlink"},
		"missing":      {path: filepath.Join(dir, "missing.txt"), wantErr: ErrNotFound},
		"missing dir":  {path: filepath.Join(dir, "nodir", "index.txt"), wantErr: ErrNotFound},
		"file as dir":  {path: filepath.Join(regular, "index.txt"), wantErr: ErrNotFound},
		"regular file": {path: regular},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			count, _, err := NewCounter(FormatTxt, Options{}).Update(tc.path)
			if tc.wantErr == nil && tc.wantText == "" {
				require.NoError(t, err)
				require.Equal(t, 1, count)
				return
			}
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			require.ErrorContains(t, err, tc.wantText)
			require.ErrorContains(t, err, tc.path)
		})
	}
}

func TestCounterStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(tempDir(t), "index.csv")
	require.NoError(t, os.WriteFile(path, []byte("name,label\n"+lines("a", 2000)+"tail,"), 0o644))
	first := NewCounter(FormatCSV, Options{})
	count, changed, err := first.Update(path)
	require.NoError(t, err)
	require.Equal(t, 2001, count)
	require.True(t, changed)

	record, err := json.Marshal(first.State())
	require.NoError(t, err)
	var restoredState CounterState
	require.NoError(t, json.Unmarshal(record, &restoredState))
	require.Equal(t, first.State(), restoredState)

	restored := RestoreCounter(FormatCSV, Options{}, restoredState)
	count, changed, err = restored.Update(path)
	require.NoError(t, err)
	require.Equal(t, 2001, count)
	require.False(t, changed, "the restored count was already reported")
	require.Zero(t, restored.scannedBytes, "nothing new to read after a restart")

	appendTo("1\nb,0\n")(t, path)
	count, changed, err = restored.Update(path)
	require.NoError(t, err)
	require.Equal(t, 2002, count, "the completed tail must not be counted twice")
	require.True(t, changed)
	require.Equal(t, int64(len("1\nb,0\n")), restored.scannedBytes)
}

func TestRestoreCounterDistrustsDamagedState(t *testing.T) {
	path := filepath.Join(tempDir(t), "index.txt")
	content := "a\nb\nc\xe2\x82"
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	counter := NewCounter(FormatTxt, Options{})
	_, _, err := counter.Update(path)
	require.NoError(t, err)
	good := counter.State()
	require.Equal(t, []byte("\xe2\x82"), good.TailPartialRune)

	cases := map[string]func(st *CounterState){
		"other format":         func(st *CounterState) { st.Format = FormatCSV },
		"negative offset":      func(st *CounterState) { st.Offset = -1 },
		"more samples than ln": func(st *CounterState) { st.Samples = 100 },
		"lines beyond offset":  func(st *CounterState) { st.Lines = 1000 },
		"complete partial":     func(st *CounterState) { st.TailPartialRune = []byte("x") },
		"long partial":         func(st *CounterState) { st.TailPartialRune = []byte("\xf0\x9f\x98\x80") },
		"missing digest":       func(st *CounterState) { st.HeadDigest = nil },
		"txt with header":      func(st *CounterState) { st.HeaderSeen = true },
		"zero offset, lines":   func(st *CounterState) { st.Offset, st.Lines = 0, 1 },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			st := counter.State()
			st.Count = 7
			damage(&st)
			restored := RestoreCounter(FormatTxt, Options{}, st)
			count, changed, err := restored.Update(path)
			require.NoError(t, err)
			require.Equal(t, 3, count)
			require.True(t, changed, "7 was the last count reported")
			require.Equal(t, int64(len(content)), restored.scannedBytes, "a damaged state means a recount")
		})
	}

	t.Run("zero state behaves like a new counter", func(t *testing.T) {
		restored := RestoreCounter(FormatTxt, Options{}, CounterState{})
		count, changed, err := restored.Update(path)
		require.NoError(t, err)
		require.Equal(t, 3, count)
		require.True(t, changed)
	})
}

func TestCounterLowerLineLimitAfterRestart(t *testing.T) {
	path := filepath.Join(tempDir(t), "index.txt")
	require.NoError(t, os.WriteFile(path, []byte("a\nabcdefgh"), 0o644))
	counter := NewCounter(FormatTxt, Options{})
	_, _, err := counter.Update(path)
	require.NoError(t, err)

	// The last line was accepted under the old limit; counting the file afresh would refuse it.
	restored := RestoreCounter(FormatTxt, Options{MaxLineLength: 4}, counter.State())
	_, _, err = restored.Update(path)
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "line 2 is longer than the limit of 4 bytes")
}

func TestStateIsACopy(t *testing.T) {
	path := filepath.Join(tempDir(t), "index.txt")
	require.NoError(t, os.WriteFile(path, []byte("a\n"), 0o644))
	counter := NewCounter(FormatTxt, Options{})
	_, _, err := counter.Update(path)
	require.NoError(t, err)
	st := counter.State()
	st.HeadDigest[0] ^= 0xff
	_, changed, err := counter.Update(path)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, int64(2), counter.scannedBytes, "changing a copy of the state must not force a recount")
}
