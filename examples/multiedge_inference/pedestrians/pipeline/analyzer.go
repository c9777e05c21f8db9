// Package pipeline is the pedestrian example's per-camera worker logic (detect, track, embed,
// re-identify) and its evaluation against the scene's ground truth. The standalone measurement
// and the worker programs share it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

// Detector and tracker settings, tuned on seed 1 of the default scene.
const (
	detectThreshold = 45
	detectMinArea   = 80
	trackMaxAge     = 4
	trackMinIoU     = 0.2
	// targetThreshold is the largest appearance distance at which a detection is the target.
	targetThreshold = 0.2
)

// Analyzer runs one camera: detection and tracking locally; with FE and ReID clients, appearance
// features from the feature extraction service and global identities from the gallery.
type Analyzer struct {
	camera   string
	detector multiedge.Detector
	fe       Features
	reid     *multiedge.Client
	// RetryFor bounds how long a frame waits for an unavailable FE or ReID service (a restarted
	// pod) before the frame fails.
	RetryFor time.Duration

	mu      sync.Mutex
	tracker multiedge.Tracker
	// target is the mean appearance of the target set through update_service, nil for none.
	target []float64
	// identities are the global identities ReID gave this camera's tracks.
	identities map[int]int
}

// Features embeds crops: a feature extraction service's client (RemoteFeatures) or the library's
// extractor in process (LocalFeatures).
type Features func(ctx context.Context, crops []multiedge.Image) ([][]float64, error)

// RemoteFeatures asks a feature extraction service.
func RemoteFeatures(fe *multiedge.Client) Features { return fe.ExtractFeatures }

// LocalFeatures runs the extractor in this process.
func LocalFeatures(_ context.Context, crops []multiedge.Image) ([][]float64, error) {
	features := make([][]float64, len(crops))
	for i := range crops {
		features[i] = multiedge.ExtractFeature(&crops[i])
	}
	return features, nil
}

// NewAnalyzer returns an analyzer for camera with its empty-scene background. fe and reid may be
// nil: single-camera tracking.
func NewAnalyzer(camera string, background *multiedge.Image, fe Features, reid *multiedge.Client) *Analyzer {
	return &Analyzer{
		camera:     camera,
		detector:   multiedge.Detector{Background: background, Threshold: detectThreshold, MinArea: detectMinArea},
		tracker:    multiedge.Tracker{MaxAge: trackMaxAge, MinIoU: trackMinIoU},
		fe:         fe,
		reid:       reid,
		RetryFor:   time.Minute,
		identities: map[int]int{},
	}
}

// whole says whether a box likely holds one whole person: not cut by the frame's edge, and as
// wide as one person (people are about 0.36 times as wide as tall; two people side by side or a
// sliver beside the pillar are not). Other crops go to ReID as partial: they may join a known
// identity but not found one, so a merged blob or a half-hidden person cannot start a wrong one.
func whole(box multiedge.Box, width int) bool {
	return box.X > 0 && box.X+box.W < width && box.H >= 15 && box.W*10 >= box.H*3 && box.W*10 <= box.H*5
}

// FrameResult is one processed frame: detections with camera-local tracks and (with ReID) global
// identities, the time detection and tracking took, and the time the whole frame took.
type FrameResult struct {
	Camera     string                `json:"camera"`
	Frame      int                   `json:"frame"`
	Detections []multiedge.Detection `json:"detections"`
	Local      time.Duration         `json:"local"`
	Total      time.Duration         `json:"total"`
	Retries    int                   `json:"retries,omitempty"`
}

// Process runs one frame. Frames must come in order.
func (a *Analyzer) Process(ctx context.Context, frame int, img *multiedge.Image) (FrameResult, error) {
	start := time.Now()
	a.mu.Lock()
	boxes := a.detector.Detect(img)
	tracked := a.tracker.Update(boxes)
	a.mu.Unlock()
	result := FrameResult{Camera: a.camera, Frame: frame, Detections: make([]multiedge.Detection, len(tracked))}
	for i, t := range tracked {
		result.Detections[i] = multiedge.Detection{Box: t.Box, Track: t.Track}
	}
	result.Local = time.Since(start)
	if a.fe == nil || a.reid == nil || len(tracked) == 0 {
		result.Total = time.Since(start)
		return result, nil
	}
	crops := make([]multiedge.Image, len(tracked))
	for i, t := range tracked {
		crops[i] = *img.Crop(t.Box)
	}
	var features [][]float64
	retries, err := a.retry(ctx, func() (err error) {
		features, err = a.fe(ctx, crops)
		return err
	})
	result.Retries += retries
	if err != nil {
		return result, fmt.Errorf("extracting features of %s frame %d: %w", a.camera, frame, err)
	}
	a.mu.Lock()
	target := a.target
	a.mu.Unlock()
	if target != nil {
		best, bestDistance := -1, targetThreshold
		for i, feature := range features {
			if distance := multiedge.CosineDistance(target, feature); distance <= bestDistance {
				best, bestDistance = i, distance
			}
		}
		if best >= 0 {
			result.Detections[best].Target = true
		}
	}
	req := multiedge.ReIDRequest{Camera: a.camera, Frame: frame, Tracks: make([]multiedge.TrackObservation, len(tracked))}
	for i, t := range tracked {
		req.Tracks[i] = multiedge.TrackObservation{Track: t.Track, Box: t.Box, Feature: features[i], Partial: !whole(t.Box, img.Width)}
	}
	var identities *multiedge.ReIDResponse
	retries, err = a.retry(ctx, func() (err error) {
		identities, err = a.reid.ReID(ctx, req)
		return err
	})
	result.Retries += retries
	if err != nil {
		return result, fmt.Errorf("re-identifying %s frame %d: %w", a.camera, frame, err)
	}
	a.mu.Lock()
	for _, identity := range identities.Identities {
		if identity.Identity != 0 {
			a.identities[identity.Track] = identity.Identity
		}
	}
	a.mu.Unlock()
	a.fillIdentities(&result)
	result.Total = time.Since(start)
	return result, nil
}

func (a *Analyzer) fillIdentities(result *FrameResult) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range result.Detections {
		result.Detections[i].Identity = a.identities[result.Detections[i].Track]
	}
}

// retry calls fn until it succeeds, the server refuses the request as such (4xx), ctx ends or
// RetryFor passes; it returns how many retries it took.
func (a *Analyzer) retry(ctx context.Context, fn func() error) (int, error) {
	deadline := time.Now().Add(a.RetryFor)
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return attempt, nil
		}
		var status *multiedge.StatusError
		if errors.As(err, &status) && status.Code >= 400 && status.Code < 500 {
			return attempt, err
		}
		if time.Now().After(deadline) {
			return attempt, err
		}
		klog.FromContext(ctx).V(2).Info("Service unavailable, retrying", "camera", a.camera, "err", err)
		select {
		case <-ctx.Done():
			return attempt, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Analyze implements multiedge.Analyzer for the video analytics server.
func (a *Analyzer) Analyze(ctx context.Context, req *multiedge.FrameRequest) (*multiedge.FrameResponse, error) {
	if req.Camera != a.camera {
		return nil, &multiedge.BadRequestError{Reason: fmt.Sprintf("camera %q: this worker analyses %q", req.Camera, a.camera)}
	}
	result, err := a.Process(ctx, req.Frame, req.Image)
	if err != nil {
		return nil, err
	}
	return &multiedge.FrameResponse{Camera: a.camera, Frame: req.Frame, Detections: result.Detections}, nil
}

// Resume continues after results of an earlier run of this camera: new tracks are numbered after
// the old ones, which the gallery still knows.
func (a *Analyzer) Resume(results []FrameResult) {
	last := 0
	for _, result := range results {
		for _, detection := range result.Detections {
			last = max(last, detection.Track)
		}
	}
	a.mu.Lock()
	a.tracker.StartAfter(last)
	a.mu.Unlock()
}

// EndOfStream tells the gallery this camera has no frames after last.
func (a *Analyzer) EndOfStream(ctx context.Context, last int) error {
	if a.reid == nil {
		return nil
	}
	_, err := a.retry(ctx, func() error {
		_, err := a.reid.ReID(ctx, multiedge.ReIDRequest{Camera: a.camera, Frame: last, EndOfStream: true})
		return err
	})
	return err
}

// Tune replaces the detector's parameters (from a model file); zero keeps a value.
func (a *Analyzer) Tune(model ModelFile) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if model.Threshold > 0 {
		a.detector.Threshold = model.Threshold
	}
	if model.MinArea > 0 {
		a.detector.MinArea = model.MinArea
	}
}

// SetTarget implements multiedge.Analyzer: from then on, the detection that looks most like the
// target (within targetThreshold) is marked in every frame. It needs a feature source.
func (a *Analyzer) SetTarget(ctx context.Context, req *multiedge.TargetRequest) error {
	if a.fe == nil {
		return &multiedge.BadRequestError{Reason: "this worker extracts no features, so it cannot follow a target"}
	}
	features, err := a.fe(ctx, req.Crops)
	if err != nil {
		return fmt.Errorf("extracting the target's features: %w", err)
	}
	mean := make([]float64, len(features[0]))
	for _, feature := range features {
		for i := range mean {
			if i < len(feature) {
				mean[i] += feature[i] / float64(len(features))
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.target = mean
	return nil
}
