package ll

import (
	"math"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// Rotate returns a copy of data with every image rotated counter-clockwise by degrees about
// the image centre (bilinear interpolation; what falls outside the 28x28 frame is black).
func Rotate(data model.Dataset, degrees float64) model.Dataset {
	out := model.Dataset{Pixels: make([]uint8, len(data.Pixels)), Labels: append([]uint8(nil), data.Labels...)}
	if math.Mod(degrees, 360) == 0 {
		copy(out.Pixels, data.Pixels)
		return out
	}
	radians := degrees * math.Pi / 180
	cos, sin := math.Cos(radians), math.Sin(radians)
	const centre = (model.Side - 1) / 2.0
	for i := 0; i < data.Len(); i++ {
		src := data.Pixels[i*model.Pixels : (i+1)*model.Pixels]
		dst := out.Pixels[i*model.Pixels : (i+1)*model.Pixels]
		for y := 0; y < model.Side; y++ {
			for x := 0; x < model.Side; x++ {
				// Inverse mapping: the source point that lands on (x, y).
				dx, dy := float64(x)-centre, float64(y)-centre
				sx := cos*dx - sin*dy + centre
				sy := sin*dx + cos*dy + centre
				dst[y*model.Side+x] = uint8(math.Round(bilinear(src, sx, sy)))
			}
		}
	}
	return out
}

func bilinear(src []uint8, x, y float64) float64 {
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	at := func(xi, yi int) float64 {
		if xi < 0 || yi < 0 || xi >= model.Side || yi >= model.Side {
			return 0
		}
		return float64(src[yi*model.Side+xi])
	}
	ix, iy := int(x0), int(y0)
	top := at(ix, iy)*(1-fx) + at(ix+1, iy)*fx
	bottom := at(ix, iy+1)*(1-fx) + at(ix+1, iy+1)*fx
	return top*(1-fy) + bottom*fy
}
