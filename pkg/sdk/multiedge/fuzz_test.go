package multiedge

import (
	"encoding/json"
	"testing"
)

// FuzzRequests feeds arbitrary bodies to the decoders and validators the servers run on network
// input: they must never panic, and a request that validates must be safe to process.
func FuzzRequests(f *testing.F) {
	f.Add([]byte(`{"crops":[{"width":1,"height":1,"rgb":"AAAA"}]}`))
	f.Add([]byte(`{"camera":"a","frame":1,"tracks":[{"track":1,"feature":[1,0]}]}`))
	f.Add([]byte(`{"features":[[1,2]],"top":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var features FeatureRequest
		if json.Unmarshal(body, &features) == nil && features.Validate() == nil {
			for i := range features.Crops {
				ExtractFeature(&features.Crops[i])
			}
		}
		var reid ReIDRequest
		if json.Unmarshal(body, &reid) == nil && reid.Validate() == nil {
			NewGallery(GalleryOptions{}).Match(&reid)
		}
		var search SearchRequest
		if json.Unmarshal(body, &search) == nil && search.Validate() == nil {
			NewGallery(GalleryOptions{}).Search(search.Features, search.Top)
		}
	})
}
