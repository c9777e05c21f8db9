package il

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	sdk "github.com/sedna-go/sedna/pkg/sdk/incrementallearning"
)

// tinyTrainSet has n images; image i has every pixel i and label i%10.
func tinyTrainSet(n int) model.Dataset {
	data := model.Dataset{}
	for i := 0; i < n; i++ {
		data.Pixels = append(data.Pixels, bytes.Repeat([]byte{byte(i)}, model.Pixels)...)
		data.Labels = append(data.Labels, uint8(i%10))
	}
	return data
}

func TestLabellerLooksUpTrueLabels(t *testing.T) {
	labeller := NewLabeller(tinyTrainSet(30))
	label, ok := labeller.Label(bytes.Repeat([]byte{23}, model.Pixels))
	require.True(t, ok)
	require.Equal(t, 3, label)
	_, ok = labeller.Label(bytes.Repeat([]byte{200}, model.Pixels))
	require.False(t, ok, "an image that is not a training image has no label")
}

func TestLabelHardExamplesAppendsOnlyNewKnownImages(t *testing.T) {
	datasetDir := t.TempDir()
	index := filepath.Join(datasetDir, "index.txt")
	require.NoError(t, os.WriteFile(index, []byte("mnist/train-images-idx3-ubyte.gz:0 5\n"), 0o644))
	hardDir := filepath.Join(datasetDir, "hard-examples")
	collector, err := sdk.NewHardExampleCollector(hardDir, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = collector.Close() })
	add := func(name string, grey byte) {
		content, err := EncodePNG(bytes.Repeat([]byte{grey}, model.Pixels))
		require.NoError(t, err)
		_, err = collector.Add(name, content, "1")
		require.NoError(t, err)
	}
	add("a.png", 12) // label 2
	add("b.png", 17) // label 7
	add("c.png", 250)
	require.NoError(t, os.WriteFile(filepath.Join(hardDir, "broken.png"), []byte("junk"), 0o644))
	f, err := os.OpenFile(filepath.Join(hardDir, "index.txt"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("/somewhere/in/the/pod/broken.png 3\n/gone.png 4\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	labeller := NewLabeller(tinyTrainSet(20))
	report, err := LabelHardExamples(labeller, index, hardDir, "")
	require.NoError(t, err)
	require.Equal(t, LabelReport{Collected: 5, Added: 2, Unknown: 1, Unreadable: 2}, report)
	content, err := os.ReadFile(index)
	require.NoError(t, err)
	require.Equal(t, "mnist/train-images-idx3-ubyte.gz:0 5\nhard-examples/a.png 2\nhard-examples/b.png 7\n", string(content))

	// Labelling again adds nothing; a new example is added.
	add("d.png", 4)
	report, err = LabelHardExamples(labeller, index, hardDir, "")
	require.NoError(t, err)
	require.Equal(t, LabelReport{Collected: 6, AlreadyLabelled: 2, Added: 1, Unknown: 1, Unreadable: 2}, report)
	samples, err := ReadIndex(index)
	require.NoError(t, err)
	require.Equal(t, Sample{"hard-examples/d.png", 4}, samples[len(samples)-1])

	// The labelled samples load through the store, as the train worker loads them.
	data, err := NewStore(datasetDir, "").Load(samples[1:])
	require.NoError(t, err)
	require.Equal(t, []uint8{2, 7, 4}, data.Labels)
}

func TestLabelHardExamplesRefusesADirectoryOutsideTheDataset(t *testing.T) {
	_, err := LabelHardExamples(NewLabeller(tinyTrainSet(1)), filepath.Join(t.TempDir(), "index.txt"), t.TempDir(), "")
	require.ErrorContains(t, err, "must be below")
}

func TestLabelHardExamplesWithNothingCollected(t *testing.T) {
	dir := t.TempDir()
	report, err := LabelHardExamples(NewLabeller(tinyTrainSet(1)), filepath.Join(dir, "index.txt"), filepath.Join(dir, "hard"), "")
	require.NoError(t, err)
	require.Equal(t, LabelReport{}, report)
	_, err = os.Stat(filepath.Join(dir, "index.txt"))
	require.True(t, os.IsNotExist(err), "nothing to append, nothing written")
}
