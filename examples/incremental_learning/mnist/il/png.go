package il

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// maxPNGBytes bounds a hard example file; a 28x28 grey PNG is well under 1 KiB.
const maxPNGBytes = 64 << 10

// EncodePNG writes 784 grey levels as a 28x28 greyscale PNG.
func EncodePNG(pixels []uint8) ([]byte, error) {
	if len(pixels) != model.Pixels {
		return nil, fmt.Errorf("encoding a PNG: %d pixels, want %d", len(pixels), model.Pixels)
	}
	img := image.NewGray(image.Rect(0, 0, model.Side, model.Side))
	copy(img.Pix, pixels)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding a PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodePNG reads a 28x28 PNG into 784 grey levels (colour images are converted to grey).
func DecodePNG(content []byte) ([]uint8, error) {
	if len(content) > maxPNGBytes {
		return nil, fmt.Errorf("PNG of %d bytes is larger than %d", len(content), maxPNGBytes)
	}
	config, err := png.DecodeConfig(bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("decoding a PNG: %w", err)
	}
	if config.Width != model.Side || config.Height != model.Side {
		return nil, fmt.Errorf("PNG is %dx%d, want %dx%d", config.Width, config.Height, model.Side, model.Side)
	}
	img, err := png.Decode(bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("decoding a PNG: %w", err)
	}
	pixels := make([]uint8, model.Pixels)
	bounds := img.Bounds()
	for y := 0; y < model.Side; y++ {
		for x := 0; x < model.Side; x++ {
			pixels[y*model.Side+x] = color.GrayModel.Convert(img.At(bounds.Min.X+x, bounds.Min.Y+y)).(color.Gray).Y
		}
	}
	return pixels, nil
}

// ToUnit converts grey levels to the models' input, pixels in [0,1].
func ToUnit(pixels []uint8) []float64 {
	out := make([]float64, len(pixels))
	for i, p := range pixels {
		out[i] = float64(p) / 255
	}
	return out
}

// FromUnit converts [0,1] pixels back to grey levels; ToUnit's output converts back exactly.
func FromUnit(pixels []float64) []uint8 {
	out := make([]uint8, len(pixels))
	for i, p := range pixels {
		out[i] = uint8(math.Round(min(max(p, 0), 1) * 255))
	}
	return out
}
