package multiedge

import (
	"context"
	"fmt"
	"net/http"
	"sync"
)

// Service names: the first path segment of each server's endpoints.
const (
	ServiceFeatureExtraction = "feature_extraction"
	ServiceReID              = "reid"
	ServiceVideoAnalytics    = "video_analytics"
)

// Extractor embeds one crop; ExtractFeature is the library's.
type Extractor func(*Image) []float64

// NewFeatureExtractionServer serves feature extraction: POST feature_extraction embeds crops,
// POST update_service sets the target whose features GET get_target_features returns.
func NewFeatureExtractionServer(extract Extractor, opts ServerOptions) (*Server, error) {
	s, err := newServer(ServiceFeatureExtraction, opts)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var target *TargetFeatures
	embed := func(crops []Image) [][]float64 {
		features := make([][]float64, len(crops))
		for i := range crops {
			features[i] = extract(&crops[i])
		}
		return features
	}
	handlePost(s, PathFeatureExtraction, func(_ context.Context, req *FeatureRequest) (*FeatureResponse, error) {
		return &FeatureResponse{Features: embed(req.Crops)}, nil
	})
	handlePost(s, PathFEUpdateService, func(_ context.Context, req *TargetRequest) (*TargetFeatures, error) {
		features := &TargetFeatures{Target: req.Target, Features: embed(req.Crops)}
		mu.Lock()
		target = features
		mu.Unlock()
		return features, nil
	})
	s.mux.HandleFunc("GET "+PathFETargetFeatures, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		current := target
		mu.Unlock()
		if current == nil {
			writeError(w, http.StatusNotFound, "no target is set: POST "+PathFEUpdateService+" first")
			return
		}
		writeJSON(w, http.StatusOK, current)
	})
	return s, nil
}

// SearchRequest asks the identity gallery where a person was seen.
type SearchRequest struct {
	Features [][]float64 `json:"features"`
	Top      int         `json:"top"`
}

// Validate checks a SearchRequest.
func (r *SearchRequest) Validate() error {
	if len(r.Features) == 0 || len(r.Features) > MaxCrops {
		return fmt.Errorf("features: %d vectors, want 1 to %d", len(r.Features), MaxCrops)
	}
	for i, feature := range r.Features {
		if len(feature) == 0 || len(feature) > MaxFeatureLength || len(feature) != len(r.Features[0]) {
			return fmt.Errorf("features[%d]: length %d, want 1 to %d and the same for all", i, len(feature), MaxFeatureLength)
		}
	}
	if r.Top < 0 || r.Top > 100 {
		return fmt.Errorf("top %d must be in [0, 100] (0 means 1)", r.Top)
	}
	return nil
}

// SearchResponse answers a SearchRequest, nearest identity first.
type SearchResponse struct {
	Results []SearchResult `json:"results"`
}

// PathReIDSearch is this implementation's addition to the reid server: "where was this person".
const PathReIDSearch = "/reid/search"

// NewReIDServer serves the identity gallery: POST reid assigns global identities to camera
// tracks; POST search ranks identities against a target's features.
func NewReIDServer(gallery *Gallery, opts ServerOptions) (*Server, error) {
	s, err := newServer(ServiceReID, opts)
	if err != nil {
		return nil, err
	}
	handlePost(s, PathReID, func(_ context.Context, req *ReIDRequest) (*ReIDResponse, error) {
		resp := gallery.Match(req)
		if req.EndOfStream && opts.OnEndOfStream != nil {
			opts.OnEndOfStream(req.Camera)
		}
		return &resp, nil
	})
	handlePost(s, PathReIDSearch, func(_ context.Context, req *SearchRequest) (*SearchResponse, error) {
		top := max(req.Top, 1)
		return &SearchResponse{Results: gallery.Search(req.Features, top)}, nil
	})
	return s, nil
}

// Analyzer processes one camera frame.
type Analyzer interface {
	Analyze(ctx context.Context, req *FrameRequest) (*FrameResponse, error)
	// SetTarget tells the analyzer whom to follow.
	SetTarget(ctx context.Context, req *TargetRequest) error
}

// NewVideoAnalyticsServer serves detection and tracking: POST video_analytics runs one frame,
// POST update_service sets the target to follow.
func NewVideoAnalyticsServer(analyzer Analyzer, opts ServerOptions) (*Server, error) {
	s, err := newServer(ServiceVideoAnalytics, opts)
	if err != nil {
		return nil, err
	}
	handlePost(s, PathVideoAnalytics, analyzer.Analyze)
	handlePost(s, PathVAUpdateService, func(ctx context.Context, req *TargetRequest) (*Status, error) {
		if err := analyzer.SetTarget(ctx, req); err != nil {
			return nil, err
		}
		status := s.Status()
		return &status, nil
	})
	return s, nil
}
