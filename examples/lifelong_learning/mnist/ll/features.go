package ll

import (
	"math"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// Feature geometry: gradient orientation histograms of a 4x4 grid of 7x7 cells (9 unsigned
// orientation bins each, weighted by gradient magnitude, the whole vector L2-normalised) and
// the 7x7 average-pooled image at half weight. Rotation moves the orientation histogram, which
// is what lets task centroids tell 0°, 45° and 90° digits apart; the thumbnail keeps where the
// ink is.
const (
	hogCells       = 4
	hogBins        = 9
	thumbnailPool  = 4
	thumbnailScale = 0.5
	// FeatureSpace names Features in the knowledge base's index.
	FeatureSpace = "mnist-hog4x9-pool4"
	// FeatureDimension is the length of Features' vectors.
	FeatureDimension = hogCells*hogCells*hogBins + (model.Side/thumbnailPool)*(model.Side/thumbnailPool)
)

// Features computes the feature vector of one image (model.Pixels values in [0,1]).
func Features(image []float64) []float64 {
	features := make([]float64, FeatureDimension)
	histogram := features[:hogCells*hogCells*hogBins]
	cell := model.Side / hogCells
	for y := 1; y < model.Side-1; y++ {
		for x := 1; x < model.Side-1; x++ {
			gx := image[y*model.Side+x+1] - image[y*model.Side+x-1]
			gy := image[(y+1)*model.Side+x] - image[(y-1)*model.Side+x]
			magnitude := math.Hypot(gx, gy)
			if magnitude == 0 {
				continue
			}
			angle := math.Atan2(gy, gx)
			if angle < 0 {
				angle += math.Pi
			}
			bin := int(angle/math.Pi*hogBins) % hogBins
			histogram[((y/cell)*hogCells+x/cell)*hogBins+bin] += magnitude
		}
	}
	var norm float64
	for _, v := range histogram {
		norm += v * v
	}
	if norm > 0 {
		norm = math.Sqrt(norm)
		for i := range histogram {
			histogram[i] /= norm
		}
	}
	thumbnail := features[hogCells*hogCells*hogBins:]
	side := model.Side / thumbnailPool
	for y := 0; y < model.Side; y++ {
		for x := 0; x < model.Side; x++ {
			thumbnail[(y/thumbnailPool)*side+x/thumbnailPool] += image[y*model.Side+x] * thumbnailScale / (thumbnailPool * thumbnailPool)
		}
	}
	return features
}

// DatasetFeatures computes Features of every image of data.
func DatasetFeatures(data model.Dataset) [][]float64 {
	features := make([][]float64, data.Len())
	for i := range features {
		features[i] = Features(data.Image(i))
	}
	return features
}
