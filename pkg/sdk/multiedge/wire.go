package multiedge

import (
	"fmt"
)

// Paths of the three servers (contract §5.7).
const (
	PathFeatureExtraction = "/feature_extraction/feature_extraction"
	PathFEUpdateService   = "/feature_extraction/update_service"
	PathFETargetFeatures  = "/feature_extraction/get_target_features"
	PathFEStatus          = "/feature_extraction/status"
	PathReID              = "/reid/reid"
	PathReIDStatus        = "/reid/status"
	PathVideoAnalytics    = "/video_analytics/video_analytics"
	PathVAUpdateService   = "/video_analytics/update_service"
	PathVAStatus          = "/video_analytics/status"
)

// Limits on what a request may carry.
const (
	// MaxImageSide bounds an image's width and height.
	MaxImageSide = 4096
	// MaxCrops bounds the crops of one feature-extraction request.
	MaxCrops = 256
	// MaxFeatureLength bounds a feature vector.
	MaxFeatureLength = 4096
	// MaxTracks bounds the tracks of one re-identification request.
	MaxTracks = 256
	// MaxNameLength bounds camera and target names.
	MaxNameLength = 253
)

// Image is an 8-bit RGB raster, row-major, 3 bytes a pixel. RGB travels as base64 in JSON.
type Image struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	RGB    []byte `json:"rgb"`
}

// NewImage returns a black image.
func NewImage(width, height int) *Image {
	return &Image{Width: width, Height: height, RGB: make([]byte, width*height*3)}
}

// Validate checks the dimensions against the pixel data; field names the JSON path for errors.
func (im *Image) Validate(field string) error {
	if im == nil {
		return fmt.Errorf("%s is missing", field)
	}
	if im.Width < 1 || im.Height < 1 || im.Width > MaxImageSide || im.Height > MaxImageSide {
		return fmt.Errorf("%s: width %d and height %d must be in [1, %d]", field, im.Width, im.Height, MaxImageSide)
	}
	if len(im.RGB) != im.Width*im.Height*3 {
		return fmt.Errorf("%s.rgb: %d bytes, want width*height*3 = %d", field, len(im.RGB), im.Width*im.Height*3)
	}
	return nil
}

// At returns the pixel at (x, y).
func (im *Image) At(x, y int) (r, g, b uint8) {
	i := (y*im.Width + x) * 3
	return im.RGB[i], im.RGB[i+1], im.RGB[i+2]
}

// Set writes the pixel at (x, y).
func (im *Image) Set(x, y int, r, g, b uint8) {
	i := (y*im.Width + x) * 3
	im.RGB[i], im.RGB[i+1], im.RGB[i+2] = r, g, b
}

// Crop copies box (clipped to the image) into a new image; nil when nothing is left.
func (im *Image) Crop(box Box) *Image {
	clipped := box.Clip(im.Width, im.Height)
	if clipped.Empty() {
		return nil
	}
	out := NewImage(clipped.W, clipped.H)
	for y := 0; y < clipped.H; y++ {
		src := ((clipped.Y+y)*im.Width + clipped.X) * 3
		copy(out.RGB[y*clipped.W*3:(y+1)*clipped.W*3], im.RGB[src:src+clipped.W*3])
	}
	return out
}

// Box is an axis-aligned pixel rectangle: X, Y its top-left corner.
type Box struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Empty reports whether the box covers no pixel.
func (b Box) Empty() bool { return b.W <= 0 || b.H <= 0 }

// Area is the number of pixels the box covers.
func (b Box) Area() int {
	if b.Empty() {
		return 0
	}
	return b.W * b.H
}

// Clip returns the part of the box inside a width×height image.
func (b Box) Clip(width, height int) Box {
	x0, y0 := max(b.X, 0), max(b.Y, 0)
	x1, y1 := min(b.X+b.W, width), min(b.Y+b.H, height)
	return Box{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
}

// IoU is the intersection over union of two boxes, 0 when either is empty.
func (b Box) IoU(o Box) float64 {
	x0, y0 := max(b.X, o.X), max(b.Y, o.Y)
	x1, y1 := min(b.X+b.W, o.X+o.W), min(b.Y+b.H, o.Y+o.H)
	if x1 <= x0 || y1 <= y0 {
		return 0
	}
	inter := (x1 - x0) * (y1 - y0)
	union := b.Area() + o.Area() - inter
	if union <= 0 {
		return 0
	}
	return float64(inter) / float64(union)
}

// FeatureRequest asks the feature extraction service to embed crops.
type FeatureRequest struct {
	Crops []Image `json:"crops"`
}

// FeatureResponse holds one L2-normalised feature per crop, in order.
type FeatureResponse struct {
	Features [][]float64 `json:"features"`
}

// TargetRequest sets the target of a search or tracking service (update_service): the images of
// the person to look for.
type TargetRequest struct {
	Target string  `json:"target"`
	Crops  []Image `json:"crops"`
}

// TargetFeatures is what get_target_features answers: the target's features.
type TargetFeatures struct {
	Target   string      `json:"target"`
	Features [][]float64 `json:"features"`
}

// TrackObservation is one camera track seen in one frame, with its appearance feature.
type TrackObservation struct {
	Track   int       `json:"track"`
	Box     Box       `json:"box"`
	Feature []float64 `json:"feature"`
	// Partial says the crop may not show the whole person (cut by the frame's edge, merged with
	// another blob, half hidden): it may join a known identity but neither founds one nor changes
	// an identity's appearance.
	Partial bool `json:"partial,omitempty"`
}

// ReIDRequest sends one frame's tracks of one camera to the identity gallery.
type ReIDRequest struct {
	Camera string             `json:"camera"`
	Frame  int                `json:"frame"`
	Tracks []TrackObservation `json:"tracks"`
	// EndOfStream says the camera has no more frames after this one.
	EndOfStream bool `json:"endOfStream,omitempty"`
}

// Identity is the gallery's answer for one track: its global identity across cameras, 0 for a
// partial observation that matched no one (ask again with a better crop).
type Identity struct {
	Track    int     `json:"track"`
	Identity int     `json:"identity"`
	Distance float64 `json:"distance"`
	New      bool    `json:"new,omitempty"`
}

// ReIDResponse answers a ReIDRequest, one Identity per track in order.
type ReIDResponse struct {
	Identities []Identity `json:"identities"`
}

// FrameRequest sends one camera frame to a video analytics worker.
type FrameRequest struct {
	Camera string `json:"camera"`
	Frame  int    `json:"frame"`
	Image  *Image `json:"image"`
}

// Detection is one tracked object in a frame: its camera-local track, when the pipeline
// re-identifies its global identity (0 when unknown), and whether it is the followed target.
type Detection struct {
	Box      Box `json:"box"`
	Track    int `json:"track"`
	Identity int `json:"identity,omitempty"`
	// Target marks the detection that looks like the target set through update_service.
	Target bool `json:"target,omitempty"`
}

// FrameResponse answers a FrameRequest.
type FrameResponse struct {
	Camera     string      `json:"camera"`
	Frame      int         `json:"frame"`
	Detections []Detection `json:"detections"`
}

// Status is what every status endpoint answers.
type Status struct {
	Service  string         `json:"service"`
	Ready    bool           `json:"ready"`
	Counters map[string]int `json:"counters,omitempty"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

func validateName(field, name string) error {
	if name == "" || len(name) > MaxNameLength {
		return fmt.Errorf("%s must be 1 to %d characters", field, MaxNameLength)
	}
	return nil
}

// Validate checks a FeatureRequest.
func (r *FeatureRequest) Validate() error {
	if len(r.Crops) == 0 || len(r.Crops) > MaxCrops {
		return fmt.Errorf("crops: %d crops, want 1 to %d", len(r.Crops), MaxCrops)
	}
	for i := range r.Crops {
		if err := r.Crops[i].Validate(fmt.Sprintf("crops[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a TargetRequest.
func (r *TargetRequest) Validate() error {
	if err := validateName("target", r.Target); err != nil {
		return err
	}
	return (&FeatureRequest{Crops: r.Crops}).Validate()
}

// Validate checks a ReIDRequest.
func (r *ReIDRequest) Validate() error {
	if err := validateName("camera", r.Camera); err != nil {
		return err
	}
	if r.Frame < 0 {
		return fmt.Errorf("frame %d is negative", r.Frame)
	}
	if len(r.Tracks) > MaxTracks {
		return fmt.Errorf("tracks: %d tracks, at most %d", len(r.Tracks), MaxTracks)
	}
	seen := map[int]bool{}
	for i, track := range r.Tracks {
		if seen[track.Track] {
			return fmt.Errorf("tracks[%d].track: %d appears twice", i, track.Track)
		}
		seen[track.Track] = true
		if len(track.Feature) == 0 || len(track.Feature) > MaxFeatureLength {
			return fmt.Errorf("tracks[%d].feature: length %d, want 1 to %d", i, len(track.Feature), MaxFeatureLength)
		}
		if i > 0 && len(track.Feature) != len(r.Tracks[0].Feature) {
			return fmt.Errorf("tracks[%d].feature: length %d differs from tracks[0]'s %d", i, len(track.Feature), len(r.Tracks[0].Feature))
		}
	}
	return nil
}

// Validate checks a FrameRequest.
func (r *FrameRequest) Validate() error {
	if err := validateName("camera", r.Camera); err != nil {
		return err
	}
	if r.Frame < 0 {
		return fmt.Errorf("frame %d is negative", r.Frame)
	}
	return r.Image.Validate("image")
}
