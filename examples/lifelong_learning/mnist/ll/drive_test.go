package ll

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAUROC(t *testing.T) {
	require.InDelta(t, 1.0, AUROC([]float64{2, 3}, []float64{0, 1}), 1e-12)
	require.InDelta(t, 0.0, AUROC([]float64{0, 1}, []float64{2, 3}), 1e-12)
	require.InDelta(t, 0.5, AUROC([]float64{1}, []float64{1}), 1e-12, "a tie counts half")
	require.InDelta(t, 0.5, AUROC([]float64{1, 3}, []float64{2}), 1e-12)
	require.InDelta(t, 0.75, AUROC([]float64{1, 3}, []float64{0, 2}), 1e-12)
	require.Zero(t, AUROC(nil, []float64{1}))
}

// TestLabelUnseenLabelsOnlyWhatItSent: filed images the driver sent are moved to labelled/ and
// appended with their digit and rotation; others stay; the header is written once.
func TestLabelUnseenLabelsOnlyWhatItSent(t *testing.T) {
	dir := t.TempDir()
	unseen := filepath.Join(dir, "output", "unseen")
	require.NoError(t, os.MkdirAll(unseen, 0o755))
	image := func(v float64) []float64 {
		pixels := make([]float64, 784)
		pixels[0] = v
		return pixels
	}
	samples := []Sample{{Image: image(0.2), Label: 3, Rotation: 90}, {Image: image(0.4), Label: 7, Rotation: 0}, {Image: image(0.6), Label: 1, Rotation: 90}}
	for _, s := range samples[:2] {
		name, err := UnseenFileName(s.Image)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(unseen, name), []byte("png"), 0o644))
	}
	stranger, err := UnseenFileName(image(1))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(unseen, stranger), []byte("png"), 0o644))
	datasetFile := filepath.Join(dir, "dataset.csv")
	require.NoError(t, AppendRows(datasetFile, []Row{{Ref: "mnist/x.gz:0", Label: 5, Rotation: 0}}))

	report, err := LabelUnseen(samples, unseen, dir, datasetFile)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"90": 1, "0": 1}, report.Labelled)
	require.Equal(t, 1, report.Unknown)
	rows, err := ReadCSV(datasetFile)
	require.NoError(t, err)
	require.Len(t, rows, 3)
	require.Equal(t, Row{Ref: "mnist/x.gz:0", Label: 5, Rotation: 0}, rows[0])
	labels := map[int]int{}
	for _, row := range rows[1:] {
		labels[row.Label] = row.Rotation
		_, err := os.Stat(filepath.Join(dir, row.Ref))
		require.NoError(t, err, "the labelled image is where its row says")
	}
	require.Equal(t, map[int]int{3: 90, 7: 0}, labels)
	left, err := os.ReadDir(unseen)
	require.NoError(t, err)
	require.Len(t, left, 1, "the image the driver did not send stays")
}
