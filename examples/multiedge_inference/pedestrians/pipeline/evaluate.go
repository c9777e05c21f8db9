package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/mot"
	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/scene"
	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

// IoUThreshold is the overlap at which a hypothesis matches ground truth.
const IoUThreshold = 0.5

// Report is the measurement of one run.
type Report struct {
	Cameras, People, Frames int
	// Single is camera-local tracking alone (a person gets a new identity in each camera and at
	// each re-entry); Multi is the same tracks with global identities from ReID.
	Single, Multi mot.Result
	// Latencies per camera frame, milliseconds: detection and tracking alone, and the whole
	// frame with feature extraction and ReID.
	SingleP50, SingleP95, MultiP50, MultiP95 float64
	// Search: people queried, answered with the right person first.
	Queries, SearchTop1 int
	// Follow: frames in which a followed target is visible, and in which it was followed.
	TargetFrames, Followed int
}

// Searcher answers "where was this person" for query photos; the standalone run and the e2e
// give it the FE and ReID (or ObjectSearch) services.
type Searcher func(ctx context.Context, crops []multiedge.Image) (identity int, err error)

// Evaluate scores results (every camera frame) against the scene's ground truth and runs one
// search per person who appears.
func Evaluate(ctx context.Context, sc *scene.Scene, results []FrameResult, search Searcher) (Report, error) {
	report := Report{Cameras: sc.Config.Cameras, People: sc.Config.People, Frames: sc.Config.Frames}
	cameraIndex := map[string]int{}
	for c := 0; c < sc.Config.Cameras; c++ {
		cameraIndex[scene.CameraName(c)] = c
	}
	truthByFrame := map[[2]int][]scene.GroundTruth{}
	for c := 0; c < sc.Config.Cameras; c++ {
		for t := 0; t < sc.Config.Frames; t++ {
			truthByFrame[[2]int{c, t}] = sc.GroundTruth(c, t)
		}
	}
	var singleFrames, multiFrames []mot.Frame
	var local, total []float64
	seen := map[[2]int]bool{}
	hypsByFrame := map[[2]int][]multiedge.Detection{}
	for _, result := range results {
		c, ok := cameraIndex[result.Camera]
		if !ok || result.Frame < 0 || result.Frame >= sc.Config.Frames {
			return report, fmt.Errorf("result for unknown camera frame %s/%d", result.Camera, result.Frame)
		}
		key := [2]int{c, result.Frame}
		if seen[key] {
			return report, fmt.Errorf("two results for camera frame %s/%d", result.Camera, result.Frame)
		}
		seen[key] = true
		hypsByFrame[key] = result.Detections
		local = append(local, float64(result.Local)/float64(time.Millisecond))
		total = append(total, float64(result.Total)/float64(time.Millisecond))
	}
	if want := sc.Config.Cameras * sc.Config.Frames; len(seen) != want {
		return report, fmt.Errorf("results cover %d of the %d camera frames: frames were lost", len(seen), want)
	}
	for c := 0; c < sc.Config.Cameras; c++ {
		for t := 0; t < sc.Config.Frames; t++ {
			key := [2]int{c, t}
			var truth []mot.Object
			for _, gt := range truthByFrame[key] {
				truth = append(truth, mot.Object{ID: gt.Person, Box: gt.Box})
			}
			var single, multi []mot.Object
			for _, d := range hypsByFrame[key] {
				single = append(single, mot.Object{ID: (c+1)*100000 + d.Track, Box: d.Box})
				// A track without a global identity yet keeps its camera-local one.
				identity := d.Identity
				if identity == 0 {
					identity = -((c+1)*100000 + d.Track)
				}
				multi = append(multi, mot.Object{ID: identity, Box: d.Box})
			}
			name := scene.CameraName(c)
			singleFrames = append(singleFrames, mot.Frame{Camera: name, Time: t, Truth: truth, Hyps: single})
			multiFrames = append(multiFrames, mot.Frame{Camera: name, Time: t, Truth: truth, Hyps: multi})
		}
	}
	report.Single = mot.Evaluate(singleFrames, IoUThreshold)
	report.Multi = mot.Evaluate(multiFrames, IoUThreshold)
	report.SingleP50, report.SingleP95 = mot.Percentile(local, 50), mot.Percentile(local, 95)
	report.MultiP50, report.MultiP95 = mot.Percentile(total, 50), mot.Percentile(total, 95)

	// Which person each global identity mostly is, from overlapping boxes.
	votes := map[int]map[int]int{}
	appears := map[int]bool{}
	for key, truth := range truthByFrame {
		for _, gt := range truth {
			appears[gt.Person] = true
			for _, d := range hypsByFrame[key] {
				if d.Identity != 0 && d.Box.IoU(gt.Box) >= IoUThreshold {
					if votes[d.Identity] == nil {
						votes[d.Identity] = map[int]int{}
					}
					votes[d.Identity][gt.Person]++
				}
			}
		}
	}
	personOf := map[int]int{}
	for identity, byPerson := range votes {
		best, bestVotes := 0, 0
		for person, n := range byPerson {
			if n > bestVotes || n == bestVotes && person < best {
				best, bestVotes = person, n
			}
		}
		personOf[identity] = best
	}
	if search == nil {
		return report, nil
	}
	for _, person := range sc.People {
		if !appears[person.ID] {
			continue
		}
		identity, err := search(ctx, sc.QueryImages(person.ID))
		if err != nil {
			return report, fmt.Errorf("searching for person %d: %w", person.ID, err)
		}
		report.Queries++
		if personOf[identity] == person.ID {
			report.SearchTop1++
		}
		// Following the found identity: every frame where the person is visible counts, and it
		// is followed when the identity's box is on the person.
		for key, truth := range truthByFrame {
			for _, gt := range truth {
				if gt.Person != person.ID {
					continue
				}
				report.TargetFrames++
				for _, d := range hypsByFrame[key] {
					if d.Identity == identity && d.Box.IoU(gt.Box) >= IoUThreshold {
						report.Followed++
						break
					}
				}
			}
		}
	}
	return report, nil
}

func percent(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// Print writes the report's table.
func (r Report) Print(w io.Writer) error {
	var b strings.Builder
	// Writes to a strings.Builder cannot fail.
	printf := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	printf("%d cameras, %d people, %d frames per camera (%d ground-truth boxes)\n\n", r.Cameras, r.People, r.Frames, r.Single.Truths)
	printf("| | single-camera tracking | multi-edge with ReID |\n|---|---|---|\n")
	printf("| MOTA | %.1f%% | %.1f%% |\n", 100*r.Single.MOTA, 100*r.Multi.MOTA)
	printf("| IDF1 | %.1f%% | %.1f%% |\n", 100*r.Single.IDF1, 100*r.Multi.IDF1)
	printf("| ID switches | %d | %d |\n", r.Single.IDSW, r.Multi.IDSW)
	printf("| FP / FN | %d / %d | %d / %d |\n", r.Single.FP, r.Single.FN, r.Multi.FP, r.Multi.FN)
	printf("| MOTP (mean IoU) | %.3f | %.3f |\n", r.Single.MOTP, r.Multi.MOTP)
	printf("| latency per frame p50 / p95 | %.2f ms / %.2f ms | %.2f ms / %.2f ms |\n", r.SingleP50, r.SingleP95, r.MultiP50, r.MultiP95)
	printf("\nsearch top-1 accuracy  %d/%d (%.1f%%)\n", r.SearchTop1, r.Queries, percent(r.SearchTop1, r.Queries))
	printf("target followed        %d/%d visible frames (%.1f%%)\n", r.Followed, r.TargetFrames, percent(r.Followed, r.TargetFrames))
	_, err := io.WriteString(w, b.String())
	return err
}

// SearchWith returns a Searcher that embeds the query crops on fe and asks reid's gallery.
func SearchWith(fe, reid *multiedge.Client) Searcher {
	return func(ctx context.Context, crops []multiedge.Image) (int, error) {
		features, err := fe.ExtractFeatures(ctx, crops)
		if err != nil {
			return 0, err
		}
		results, err := reid.Search(ctx, features, 1)
		if err != nil {
			return 0, err
		}
		if len(results) == 0 {
			return 0, nil
		}
		return results[0].Identity, nil
	}
}

// PathSearch is the user API of the example's ObjectSearchService (pedestrians-search).
const PathSearch = "/object_search/search"

// SearchThrough returns a Searcher asking an ObjectSearchService's user worker at base.
func SearchThrough(base, token string) Searcher {
	client := &http.Client{Timeout: 30 * time.Second}
	return func(ctx context.Context, crops []multiedge.Image) (int, error) {
		body, err := json.Marshal(multiedge.TargetRequest{Target: "query", Crops: crops})
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+PathSearch, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer func() { _ = resp.Body.Close() }() // decoded below
		if resp.StatusCode != http.StatusOK {
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // best effort, for the message
			return 0, fmt.Errorf("search answered %s: %s", resp.Status, answer)
		}
		var answer multiedge.SearchResponse
		if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&answer); err != nil {
			return 0, err
		}
		if len(answer.Results) == 0 {
			return 0, nil
		}
		return answer.Results[0].Identity, nil
	}
}
