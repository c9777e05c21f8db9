package il

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

func TestParseLine(t *testing.T) {
	for line, want := range map[string]Sample{
		"mnist/train-images-idx3-ubyte.gz:12345 7": {Ref: "mnist/train-images-idx3-ubyte.gz:12345", Label: 7},
		"hard-examples/a.png 0":                    {Ref: "hard-examples/a.png", Label: 0},
		"  x.PNG\t9  ":                             {Ref: "x.PNG", Label: 9},
		"t10k-images-idx3-ubyte:0 3":               {Ref: "t10k-images-idx3-ubyte:0", Label: 3},
	} {
		got, err := ParseLine(line)
		require.NoError(t, err, line)
		require.Equal(t, want, got, line)
	}
	for line, wantErr := range map[string]string{
		"":                                  "got 0 fields",
		"a.png":                             "got 1 fields",
		"a.png 1 extra":                     "got 3 fields",
		"a.png 10":                          "not a digit 0-9",
		"a.png -1":                          "not a digit 0-9",
		"a.png 01":                          "not a digit 0-9",
		"a.jpg 1":                           "must be .png",
		"/abs/a.png 1":                      "clean relative path",
		"../a.png 1":                        "clean relative path",
		"a/../../b.png 1":                   "clean relative path",
		"./a.png 1":                         "clean relative path",
		`a\b.png 1`:                         "clean relative path",
		"mnist/x.gz: 1":                     "not an image number",
		"mnist/x.gz:-3 1":                   "not an image number",
		"mnist/x.gz:007 1":                  "not an image number",
		"mnist/x.gz:abc 1":                  "not an image number",
		":12 1":                             "has no file",
		"mnist/x.gz:99999999999999999999 1": "not an image number",
	} {
		_, err := ParseLine(line)
		require.ErrorContains(t, err, wantErr, "%q", line)
	}
}

func TestParseIndexSkipsBlankLinesAndNamesTheBadOne(t *testing.T) {
	samples, err := ParseIndex([]byte("a.png 1\n\n  \nb/c.png 2\r\n"))
	require.NoError(t, err)
	require.Equal(t, []Sample{{"a.png", 1}, {"b/c.png", 2}}, samples)
	_, err = ParseIndex([]byte("a.png 1\nb.png x\n"))
	require.ErrorContains(t, err, "index line 2")
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte("mnist/train-images-idx3-ubyte.gz:1 7\nhard/x.png 3\n"))
	f.Add([]byte("../x.png 1\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		samples, err := ParseIndex(content)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for _, s := range samples {
			buf.WriteString(s.String() + "\n")
		}
		again, err := ParseIndex(buf.Bytes())
		require.NoError(t, err)
		require.Equal(t, samples, again, "an index re-encodes to itself")
	})
}

// idxImages builds an idx3-ubyte file of n images whose pixels are all i for image i.
func idxImages(t *testing.T, n int, gzipped bool) []byte {
	t.Helper()
	var raw bytes.Buffer
	for _, v := range []uint32{0x803, uint32(n), model.Side, model.Side} {
		require.NoError(t, binary.Write(&raw, binary.BigEndian, v))
	}
	for i := 0; i < n; i++ {
		raw.Write(bytes.Repeat([]byte{byte(i)}, model.Pixels))
	}
	if !gzipped {
		return raw.Bytes()
	}
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, err := w.Write(raw.Bytes())
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return out.Bytes()
}

func TestStoreLoadsIdxImagesAndPNGs(t *testing.T) {
	root, fallback := t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "mnist"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "mnist", "imgs.gz"), idxImages(t, 3, true), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(fallback, "raw-idx3-ubyte"), idxImages(t, 5, false), 0o644))
	pixels := bytes.Repeat([]byte{200}, model.Pixels)
	pixels[0] = 7
	png, err := EncodePNG(pixels)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "hard"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "hard", "x.png"), png, 0o644))

	store := NewStore(root, fallback)
	data, err := store.Load([]Sample{{"mnist/imgs.gz:2", 4}, {"hard/x.png", 9}, {"mnist/raw-idx3-ubyte:4", 1}})
	require.NoError(t, err)
	require.Equal(t, []uint8{4, 9, 1}, data.Labels)
	require.Equal(t, bytes.Repeat([]byte{2}, model.Pixels), data.Pixels[:model.Pixels])
	require.Equal(t, pixels, data.Pixels[model.Pixels:2*model.Pixels])
	require.Equal(t, bytes.Repeat([]byte{4}, model.Pixels), data.Pixels[2*model.Pixels:], "found by base name in the MNIST directory")

	for ref, wantErr := range map[string]string{
		"mnist/imgs.gz:3":    "has 3 images",
		"hard/missing.png":   "no such file",
		"mnist/nothing.gz:0": "no such file",
	} {
		_, err := store.Image(ref)
		require.ErrorContains(t, err, wantErr, ref)
	}
	// A symlink out of the dataset directory is not followed.
	outside := filepath.Join(t.TempDir(), "secret.png")
	require.NoError(t, os.WriteFile(outside, png, 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "hard", "link.png")))
	_, err = store.Image("hard/link.png")
	require.Error(t, err)
}

func TestDecodeIdxRejectsBadFiles(t *testing.T) {
	good := idxImages(t, 2, false)
	for name, content := range map[string][]byte{
		"short header": good[:10],
		"labels magic": append([]byte{0, 0, 8, 1}, good[4:]...),
		"truncated":    good[:len(good)-1],
		"wrong size":   append(append(bytes.Clone(good[:8]), 0, 0, 0, 27), good[12:]...),
		"bad gzip":     {0x1f, 0x8b, 0, 0},
	} {
		_, err := DecodeIdxImages(content)
		require.Error(t, err, name)
	}
}

func TestPNGRoundTripAndFloatConversion(t *testing.T) {
	pixels := make([]uint8, model.Pixels)
	for i := range pixels {
		pixels[i] = uint8(i * 7)
	}
	content, err := EncodePNG(pixels)
	require.NoError(t, err)
	back, err := DecodePNG(content)
	require.NoError(t, err)
	require.Equal(t, pixels, back)
	require.Equal(t, pixels, FromUnit(ToUnit(pixels)), "the API's [0,1] floats convert back exactly")
	_, err = DecodePNG([]byte("not a png"))
	require.Error(t, err)
	_, err = EncodePNG(pixels[:10])
	require.Error(t, err)
}

func TestAppendIndex(t *testing.T) {
	file := filepath.Join(t.TempDir(), "index.txt")
	require.NoError(t, AppendIndex(file, []Sample{{"a.png", 1}}))
	require.NoError(t, AppendIndex(file, nil))
	require.NoError(t, AppendIndex(file, []Sample{{"b.png", 2}, {"m/x.gz:3", 4}}))
	content, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, "a.png 1\nb.png 2\nm/x.gz:3 4\n", string(content))
}
