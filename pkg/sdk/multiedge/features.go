package multiedge

import "math"

// Appearance feature layout: a saturation-weighted hue histogram of the crop's upper half (the
// shirt) and of its lower half (the trousers), the mean brightness of the coloured pixels of each
// half, and how often colour changes along rows and along columns in the upper half (stripes).
const (
	hueBins = 12
	// FeatureLength is the length of ExtractFeature's vectors.
	FeatureLength = 2*hueBins + 2 + 2
	// minSaturation separates coloured clothing from the grey ground, walls and skin.
	minSaturation = 0.3
)

// ExtractFeature embeds a person crop into an L2-normalised appearance vector; nil for an empty
// crop. Grey pixels (ground, walls, pillars) do not count, so a loose box hurts little.
func ExtractFeature(crop *Image) []float64 {
	if crop == nil || crop.Width == 0 || crop.Height == 0 {
		return nil
	}
	feature := make([]float64, FeatureLength)
	half := crop.Height / 2
	var brightness, weight [2]float64
	var rowChanges, colChanges, comparisons float64
	hueAt := func(x, y int) (float64, float64, float64) { return hsv(crop.At(x, y)) }
	for y := 0; y < crop.Height; y++ {
		part := 0
		if y >= half {
			part = 1
		}
		for x := 0; x < crop.Width; x++ {
			hue, sat, val := hueAt(x, y)
			if sat < minSaturation {
				continue
			}
			bin := int(hue/360*hueBins) % hueBins
			feature[part*hueBins+bin] += sat
			brightness[part] += val * sat
			weight[part] += sat
			if part == 0 {
				if x+1 < crop.Width {
					_, _, next := hueAt(x+1, y)
					comparisons++
					if math.Abs(next-val) > 0.2 {
						rowChanges++
					}
				}
				if y+1 < half {
					_, _, next := hueAt(x, y+1)
					if math.Abs(next-val) > 0.2 {
						colChanges++
					}
				}
			}
		}
	}
	for part := 0; part < 2; part++ {
		if weight[part] == 0 {
			continue
		}
		for bin := 0; bin < hueBins; bin++ {
			feature[part*hueBins+bin] /= weight[part]
		}
		feature[2*hueBins+part] = 0.5 * brightness[part] / weight[part]
	}
	if comparisons > 0 {
		feature[2*hueBins+2] = 2 * rowChanges / comparisons
		feature[2*hueBins+3] = 2 * colChanges / comparisons
	}
	return normalize(feature)
}

func normalize(v []float64) []float64 {
	var sum float64
	for _, x := range v {
		sum += x * x
	}
	if sum == 0 {
		return v
	}
	norm := math.Sqrt(sum)
	for i := range v {
		v[i] /= norm
	}
	return v
}

// CosineDistance is 1 - cos(a, b) for vectors of equal length; 2 (the maximum) when they differ.
func CosineDistance(a, b []float64) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 2
	}
	var dot, na, nb float64
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	if na == 0 || nb == 0 {
		return 2
	}
	return 1 - dot/math.Sqrt(na*nb)
}

func hsv(r, g, b uint8) (hue, sat, val float64) {
	rf, gf, bf := float64(r)/255, float64(g)/255, float64(b)/255
	maxc, minc := math.Max(rf, math.Max(gf, bf)), math.Min(rf, math.Min(gf, bf))
	val = maxc
	if maxc == 0 {
		return 0, 0, 0
	}
	delta := maxc - minc
	sat = delta / maxc
	if delta == 0 {
		return 0, sat, val
	}
	switch maxc {
	case rf:
		hue = math.Mod((gf-bf)/delta, 6)
	case gf:
		hue = (bf-rf)/delta + 2
	default:
		hue = (rf-gf)/delta + 4
	}
	hue *= 60
	if hue < 0 {
		hue += 360
	}
	return hue, sat, val
}
