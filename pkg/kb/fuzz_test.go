package kb

import (
	"encoding/json"
	"testing"
)

// FuzzParseIndex: any accepted index answers every query of its dimension without panicking,
// and re-encodes to an index that is accepted again.
func FuzzParseIndex(f *testing.F) {
	good, _ := json.Marshal(twoTaskIndex())
	f.Add(good)
	f.Add([]byte(`{"format":"sedna-kb-index/v1","featureSpace":"x","dimension":1,"tasks":[{"id":"a","model":{"url":"u"},"centroids":[[1e308]],"radius":1e-308}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		index, err := ParseIndex(data)
		if err != nil {
			return
		}
		features := make([]float64, index.Dimension)
		match := index.Match(features)
		if match.Unseen == (match.Model != nil) {
			t.Fatalf("a match is either unseen or has a model: %+v", match)
		}
		if _, err := json.Marshal(match); err != nil {
			t.Fatalf("the answer does not encode: %v", err)
		}
		again, err := json.Marshal(index)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseIndex(again); err != nil {
			t.Fatalf("a re-encoded index is refused: %v", err)
		}
	})
}
