package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestArchNames(t *testing.T) {
	for name, want := range map[string]Arch{
		"softmax-pool2":  EdgeArch,
		"mlp-pool1-h256": CloudArch,
		"mlp-pool4-h16":  {Pool: 4, Hidden: 16},
	} {
		got, err := ParseArch(name)
		require.NoError(t, err, name)
		require.Equal(t, want, got)
		require.Equal(t, name, got.String())
	}
	for _, bad := range []string{"", "softmax", "softmax-pool3", "mlp-pool1-h0", "mlp-pool1", "cnn-pool1", "softmax-poolx"} {
		_, err := ParseArch(bad)
		require.Error(t, err, bad)
	}
}

func TestPredictReturnsProbabilities(t *testing.T) {
	for _, arch := range []Arch{EdgeArch, CloudArch} {
		m, err := New(arch, 7)
		require.NoError(t, err)
		image := make([]float64, Pixels)
		for i := range image {
			image[i] = float64(i%13) / 12
		}
		prediction, err := m.Predict(image)
		require.NoError(t, err)
		require.Len(t, prediction.Probs, Classes)
		var sum float64
		for _, p := range prediction.Probs {
			require.True(t, p >= 0 && p <= 1)
			sum += p
			require.LessOrEqual(t, p, prediction.Probs[prediction.Label])
		}
		require.InDelta(t, 1, sum, 1e-9)
	}
}

func TestPredictRejectsBadImages(t *testing.T) {
	m, err := New(EdgeArch, 1)
	require.NoError(t, err)
	for name, image := range map[string][]float64{
		"short": make([]float64, Pixels-1),
		"nan":   append(make([]float64, Pixels-1), math.NaN()),
		"big":   append(make([]float64, Pixels-1), 2),
		"neg":   append([]float64{-0.1}, make([]float64, Pixels-1)...),
	} {
		_, err := m.Predict(image)
		require.Error(t, err, name)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, arch := range []Arch{EdgeArch, CloudArch} {
		m, err := New(arch, 3)
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), "m.model")
		require.NoError(t, m.Save(path))
		loaded, err := Load(path)
		require.NoError(t, err)
		require.Equal(t, m, loaded)
		entries, err := os.ReadDir(filepath.Dir(path))
		require.NoError(t, err)
		require.Len(t, entries, 1, "Save leaves no temporary file")
		info, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o644), info.Mode().Perm(), "a model is readable by workers of other users")
	}
}

// resealed returns data with its checksum recomputed, to reach the checks
// behind the checksum.
func resealed(data []byte) []byte {
	body := bytes.Clone(data[:len(data)-4])
	return binary.LittleEndian.AppendUint32(body, crc32.ChecksumIEEE(body))
}

func TestLoadRejectsCorruptFiles(t *testing.T) {
	m, err := New(EdgeArch, 3)
	require.NoError(t, err)
	good, err := m.MarshalBinary()
	require.NoError(t, err)
	archAt := len(fileMagic) + 4 + 2

	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	wrongVersion := bytes.Clone(good)
	wrongVersion[len(fileMagic)] = 9
	otherArch := bytes.Clone(good)
	copy(otherArch[archAt:], "softmax-pool4") // same length, fewer weights
	unknownArch := bytes.Clone(good)
	copy(unknownArch[archAt:], "convnet-pool2")
	nanWeight := bytes.Clone(good)
	binary.LittleEndian.PutUint64(nanWeight[archAt+len("softmax-pool2")+4+8:], math.Float64bits(math.NaN()))
	trailing := append(bytes.Clone(good[:len(good)-4]), 0, 0, 0, 0, 0, 0, 0, 0)

	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"empty":         {nil, "header"},
		"not a model":   {[]byte("{\"weights\": []}"), "header"},
		"truncated":     {good[:len(good)-100], "checksum"},
		"flipped bit":   {flipped, "checksum"},
		"wrong version": {resealed(wrongVersion), "version 9"},
		"arch mismatch": {resealed(otherArch), "softmax-pool4 needs 49x10"},
		"unknown arch":  {resealed(unknownArch), "convnet-pool2"},
		"nan weight":    {resealed(nanWeight), "non-finite"},
		"trailing data": {resealed(append(trailing, 0, 0, 0, 0)), "unexpected bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.model")
			require.NoError(t, os.WriteFile(path, tc.data, 0o600))
			_, err := Load(path)
			require.ErrorIs(t, err, ErrBadModelFile)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, path)
		})
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.model"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzUnmarshalBinary(f *testing.F) {
	for _, arch := range []Arch{EdgeArch, {Pool: 7, Hidden: 2}} {
		m, err := New(arch, 1)
		require.NoError(f, err)
		data, err := m.MarshalBinary()
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(fileMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := UnmarshalBinary(data)
		if err != nil {
			require.True(t, errors.Is(err, ErrBadModelFile), "%v", err)
			return
		}
		again, err := m.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, data, again, "a file that loads re-encodes to itself")
	})
}

func TestTrainingReducesLoss(t *testing.T) {
	dir, err := DefaultMNISTDir()
	require.NoError(t, err)
	// The 10,000 test images load four times faster than the training set;
	// this test only needs two disjoint sets of 500.
	all, err := LoadTest(dir)
	require.NoError(t, err)
	train := all.Head(500)
	test := Dataset{Pixels: all.Pixels[500*Pixels : 1000*Pixels], Labels: all.Labels[500:1000]}

	for _, arch := range []Arch{EdgeArch, {Pool: 2, Hidden: 32}} {
		m, err := New(arch, 1)
		require.NoError(t, err)
		_, before := m.Evaluate(test)
		opts := DefaultTrainOptions(arch)
		opts.Epochs = 4
		losses, err := m.Train(train, opts)
		require.NoError(t, err)
		require.Len(t, losses, 4)
		require.Less(t, losses[3], losses[0], "training loss falls (%s)", arch)
		accuracy, after := m.Evaluate(test)
		require.Less(t, after, before, "held-out loss falls (%s)", arch)
		require.Greater(t, accuracy, 0.6, "500 images teach more than chance (%s)", arch)

		// Same seed, same data: same weights.
		again, err := New(arch, 1)
		require.NoError(t, err)
		_, err = again.Train(train, opts)
		require.NoError(t, err)
		require.Equal(t, m, again)
	}
}

func TestTensorsRoundTrip(t *testing.T) {
	m, err := New(Arch{Pool: 2, Hidden: 8}, 1)
	require.NoError(t, err)
	tensors := m.Tensors()
	require.Len(t, tensors, 4)
	require.Equal(t, []int{196, 8}, tensors[0].Shape)
	require.Equal(t, []int{10}, tensors[3].Shape)
	other, err := New(Arch{Pool: 2, Hidden: 8}, 2)
	require.NoError(t, err)
	require.NoError(t, other.SetTensors(tensors))
	require.Equal(t, tensors, other.Tensors())
	tensors[0].Values[0] = 42 // a copy: the model is unchanged
	require.NotEqual(t, 42.0, m.Tensors()[0].Values[0])
	tensors[1].Shape = []int{9}
	require.ErrorContains(t, other.SetTensors(tensors), "layer 1 biases have shape [9]")
	require.ErrorContains(t, other.SetTensors(tensors[:2]), "2 tensors, want 4")
}
