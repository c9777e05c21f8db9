package multiedge

import (
	"sort"
	"sync"
)

// GalleryOptions tunes cross-camera matching.
type GalleryOptions struct {
	// Threshold is the largest cosine distance at which a new track joins a known identity.
	Threshold float64
	// Momentum weighs an identity's stored feature against a new observation (0.9 keeps 90%).
	Momentum float64
	// BusyFrames: an identity seen by another camera within this many frames is taken (a person
	// is in one place at a time), so a new track cannot join it.
	BusyFrames int
	// MaxSightings bounds the sightings kept per identity.
	MaxSightings int
	// Drift: a track keeps its identity while whole views stay within Threshold*Drift of it.
	Drift float64
	// MaxIdentities and MaxTracks bound memory: beyond them the identities (or track bindings)
	// seen longest ago are forgotten, half at a time.
	MaxIdentities, MaxTracks int
}

// Gallery assigns global identities to camera tracks by appearance and remembers where each
// identity was seen. It is safe for concurrent use.
type Gallery struct {
	opts GalleryOptions

	mu         sync.Mutex
	identities []*galleryIdentity
	byTrack    map[trackKey]*galleryIdentity
	lastID     int
}

type trackKey struct {
	camera string
	track  int
}

type galleryIdentity struct {
	id        int
	feature   []float64
	lastFrame int
	lastTrack trackKey
	sightings []Sighting
}

// Sighting is a stretch of frames in which an identity was seen by one camera.
type Sighting struct {
	Camera    string `json:"camera"`
	First     int    `json:"first"`
	Last      int    `json:"last"`
	LastBox   Box    `json:"lastBox"`
	Frames    int    `json:"frames"`
	LastTrack int    `json:"lastTrack"`
}

// NewGallery returns an empty gallery; zero options take defaults (0.2, 0.9, 3, 1000, 1.5, 4096,
// 65536).
func NewGallery(opts GalleryOptions) *Gallery {
	if opts.Threshold <= 0 {
		opts.Threshold = 0.2
	}
	if opts.Momentum <= 0 || opts.Momentum >= 1 {
		opts.Momentum = 0.9
	}
	if opts.BusyFrames <= 0 {
		opts.BusyFrames = 3
	}
	if opts.MaxSightings <= 0 {
		opts.MaxSightings = 1000
	}
	if opts.Drift <= 0 {
		opts.Drift = 1.5
	}
	if opts.MaxIdentities <= 0 {
		opts.MaxIdentities = 4096
	}
	if opts.MaxTracks <= 0 {
		opts.MaxTracks = 65536
	}
	return &Gallery{opts: opts, byTrack: map[trackKey]*galleryIdentity{}}
}

// Match answers a ReIDRequest: tracks already known keep their identity; new tracks join the
// nearest free identity within Threshold (nearest pairs first) or found a new one.
func (g *Gallery) Match(req *ReIDRequest) ReIDResponse {
	g.mu.Lock()
	defer g.mu.Unlock()
	resp := ReIDResponse{Identities: make([]Identity, len(req.Tracks))}
	taken := map[*galleryIdentity]bool{}
	var fresh []int
	for i, observation := range req.Tracks {
		key := trackKey{req.Camera, observation.Track}
		if known, ok := g.byTrack[key]; ok {
			distance := CosineDistance(known.feature, observation.Feature)
			// A whole view that no longer looks like the track's identity means the tracker
			// swapped people (two blobs merged and split): the track is matched afresh.
			if observation.Partial || distance <= g.opts.Threshold*g.opts.Drift {
				resp.Identities[i] = Identity{Track: observation.Track, Identity: known.id, Distance: distance}
				taken[known] = true
				continue
			}
			delete(g.byTrack, key)
		}
		fresh = append(fresh, i)
	}
	type pair struct {
		track    int
		identity *galleryIdentity
		distance float64
	}
	var pairs []pair
	for _, i := range fresh {
		key := trackKey{req.Camera, req.Tracks[i].Track}
		for _, candidate := range g.identities {
			if g.busy(candidate, key, req.Frame) {
				continue
			}
			if distance := CosineDistance(candidate.feature, req.Tracks[i].Feature); distance <= g.opts.Threshold {
				pairs = append(pairs, pair{i, candidate, distance})
			}
		}
	}
	sort.SliceStable(pairs, func(a, b int) bool { return pairs[a].distance < pairs[b].distance })
	joined := map[int]bool{}
	for _, p := range pairs {
		if joined[p.track] || taken[p.identity] {
			continue
		}
		joined[p.track], taken[p.identity] = true, true
		g.byTrack[trackKey{req.Camera, req.Tracks[p.track].Track}] = p.identity
		resp.Identities[p.track] = Identity{Track: req.Tracks[p.track].Track, Identity: p.identity.id, Distance: p.distance}
	}
	for _, i := range fresh {
		if joined[i] {
			continue
		}
		if req.Tracks[i].Partial {
			resp.Identities[i] = Identity{Track: req.Tracks[i].Track}
			continue
		}
		g.lastID++
		created := &galleryIdentity{id: g.lastID, feature: append([]float64(nil), req.Tracks[i].Feature...), lastFrame: -1 << 30}
		g.identities = append(g.identities, created)
		g.byTrack[trackKey{req.Camera, req.Tracks[i].Track}] = created
		resp.Identities[i] = Identity{Track: req.Tracks[i].Track, Identity: created.id, New: true}
	}
	for _, observation := range req.Tracks {
		if identity, ok := g.byTrack[trackKey{req.Camera, observation.Track}]; ok {
			g.observe(identity, req.Camera, req.Frame, observation)
		}
	}
	g.forget()
	return resp
}

// forget drops the identities and track bindings seen longest ago once there are too many.
func (g *Gallery) forget() {
	if len(g.identities) > g.opts.MaxIdentities {
		sort.SliceStable(g.identities, func(a, b int) bool { return g.identities[a].lastFrame > g.identities[b].lastFrame })
		dropped := map[*galleryIdentity]bool{}
		for _, identity := range g.identities[g.opts.MaxIdentities/2:] {
			dropped[identity] = true
		}
		g.identities = g.identities[:g.opts.MaxIdentities/2]
		sort.SliceStable(g.identities, func(a, b int) bool { return g.identities[a].id < g.identities[b].id })
		for key, identity := range g.byTrack {
			if dropped[identity] {
				delete(g.byTrack, key)
			}
		}
	}
	if len(g.byTrack) > g.opts.MaxTracks {
		type binding struct {
			key       trackKey
			lastFrame int
		}
		bindings := make([]binding, 0, len(g.byTrack))
		for key, identity := range g.byTrack {
			bindings = append(bindings, binding{key, identity.lastFrame})
		}
		sort.Slice(bindings, func(a, b int) bool { return bindings[a].lastFrame < bindings[b].lastFrame })
		for _, b := range bindings[:len(bindings)-g.opts.MaxTracks/2] {
			delete(g.byTrack, b.key)
		}
	}
}

// busy says whether identity is elsewhere at frame: on another track of the same frame, or on
// another camera within BusyFrames. A track of the same camera that ended a few frames ago is no
// obstacle: that is how a tracker fragments around occlusions, and the new track continues it.
func (g *Gallery) busy(identity *galleryIdentity, key trackKey, frame int) bool {
	if identity.lastTrack == key {
		return false
	}
	if identity.lastTrack.camera == key.camera {
		return identity.lastFrame == frame
	}
	return frame-identity.lastFrame <= g.opts.BusyFrames && identity.lastFrame-frame <= g.opts.BusyFrames
}

func (g *Gallery) observe(identity *galleryIdentity, camera string, frame int, observation TrackObservation) {
	if len(identity.feature) == len(observation.Feature) && !observation.Partial {
		for k := range identity.feature {
			identity.feature[k] = g.opts.Momentum*identity.feature[k] + (1-g.opts.Momentum)*observation.Feature[k]
		}
		identity.feature = normalize(identity.feature)
	}
	if frame > identity.lastFrame {
		identity.lastFrame = frame
		identity.lastTrack = trackKey{camera, observation.Track}
	}
	if n := len(identity.sightings); n > 0 {
		last := &identity.sightings[n-1]
		if last.Camera == camera && frame >= last.Last && frame-last.Last <= 10 {
			last.Last, last.LastBox, last.LastTrack = frame, observation.Box, observation.Track
			last.Frames++
			return
		}
	}
	if len(identity.sightings) >= g.opts.MaxSightings {
		identity.sightings = identity.sightings[1:]
	}
	identity.sightings = append(identity.sightings, Sighting{Camera: camera, First: frame, Last: frame, LastBox: observation.Box, Frames: 1, LastTrack: observation.Track})
}

// SearchResult is one identity answering a search, nearest first.
type SearchResult struct {
	Identity  int        `json:"identity"`
	Distance  float64    `json:"distance"`
	Sightings []Sighting `json:"sightings"`
}

// Search ranks identities by the distance of their appearance to the mean of features and
// returns the best k with where they were seen.
func (g *Gallery) Search(features [][]float64, k int) []SearchResult {
	if len(features) == 0 || k <= 0 {
		return nil
	}
	query := make([]float64, len(features[0]))
	for _, feature := range features {
		for i := range query {
			if i < len(feature) {
				query[i] += feature[i]
			}
		}
	}
	query = normalize(query)
	g.mu.Lock()
	defer g.mu.Unlock()
	results := make([]SearchResult, 0, len(g.identities))
	for _, identity := range g.identities {
		results = append(results, SearchResult{
			Identity:  identity.id,
			Distance:  CosineDistance(identity.feature, query),
			Sightings: append([]Sighting(nil), identity.sightings...),
		})
	}
	sort.SliceStable(results, func(a, b int) bool { return results[a].Distance < results[b].Distance })
	if len(results) > k {
		results = results[:k]
	}
	return results
}

// Len is the number of identities.
func (g *Gallery) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.identities)
}
