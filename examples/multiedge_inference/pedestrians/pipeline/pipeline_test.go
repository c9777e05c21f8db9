package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/scene"
	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

// TestReIDBeatsSingleCameraTracking runs the default scene through the real servers (in
// process, over HTTP) and checks what the example claims: global identities from ReID keep
// people's identities across cameras and re-entries, so ID switches fall and IDF1 rises, while
// detection (FP, FN) is the same; every person is found by search.
func TestReIDBeatsSingleCameraTracking(t *testing.T) {
	ctx := context.Background()
	sc, err := scene.New(scene.DefaultConfig())
	require.NoError(t, err)
	feServer, err := multiedge.NewFeatureExtractionServer(multiedge.ExtractFeature, multiedge.ServerOptions{Token: "t"})
	require.NoError(t, err)
	reidServer, err := multiedge.NewReIDServer(multiedge.NewGallery(multiedge.GalleryOptions{}), multiedge.ServerOptions{Token: "t"})
	require.NoError(t, err)
	feHTTP, reidHTTP := httptest.NewServer(feServer), httptest.NewServer(reidServer)
	defer feHTTP.Close()
	defer reidHTTP.Close()
	fe, reid := multiedge.NewClient(feHTTP.URL, "t", nil), multiedge.NewClient(reidHTTP.URL, "t", nil)
	analyzers := make([]*Analyzer, sc.Config.Cameras)
	for c := range analyzers {
		analyzers[c] = NewAnalyzer(scene.CameraName(c), sc.Background(c), RemoteFeatures(fe), reid)
	}
	var results []FrameResult
	for frame := 0; frame < sc.Config.Frames; frame++ {
		for c, analyzer := range analyzers {
			img, _ := sc.Render(c, frame)
			result, err := analyzer.Process(ctx, frame, img)
			require.NoError(t, err)
			results = append(results, result)
		}
	}
	report, err := Evaluate(ctx, sc, results, SearchWith(fe, reid))
	require.NoError(t, err)
	require.Equal(t, report.Single.FP, report.Multi.FP)
	require.Equal(t, report.Single.FN, report.Multi.FN)
	require.Less(t, report.Multi.IDSW, report.Single.IDSW*2/3)
	require.Greater(t, report.Multi.IDF1, report.Single.IDF1+0.4)
	require.Greater(t, report.Multi.MOTA, report.Single.MOTA)
	require.Equal(t, report.Queries, report.SearchTop1)

	_, err = Evaluate(ctx, sc, append(results, results[0]), nil)
	require.ErrorContains(t, err, "two results")
	_, err = Evaluate(ctx, sc, results[1:], nil)
	require.ErrorContains(t, err, "frames were lost")
}

// TestVideoAnalyticsServerFollowsTarget drives one camera through the video analytics server:
// frames in, tracked detections out, and after update_service the target's detection is marked.
func TestVideoAnalyticsServerFollowsTarget(t *testing.T) {
	ctx := context.Background()
	sc, err := scene.New(scene.DefaultConfig())
	require.NoError(t, err)
	reidServer, err := multiedge.NewReIDServer(multiedge.NewGallery(multiedge.GalleryOptions{}), multiedge.ServerOptions{Token: "t"})
	require.NoError(t, err)
	reidHTTP := httptest.NewServer(reidServer)
	defer reidHTTP.Close()
	const camera = 0
	analyzer := NewAnalyzer(scene.CameraName(camera), sc.Background(camera), LocalFeatures, multiedge.NewClient(reidHTTP.URL, "t", nil))
	vaServer, err := multiedge.NewVideoAnalyticsServer(analyzer, multiedge.ServerOptions{Token: "t"})
	require.NoError(t, err)
	vaHTTP := httptest.NewServer(vaServer)
	defer vaHTTP.Close()
	va := multiedge.NewClient(vaHTTP.URL, "t", nil)

	// The first frame in which some person is fully visible: follow them.
	target, targetFrame := 0, 0
	for frame := 0; frame < sc.Config.Frames && target == 0; frame++ {
		_, truth := sc.Render(camera, frame)
		for _, gt := range truth {
			if gt.Visibility == 1 && gt.Box.X > 0 && gt.Box.X+gt.Box.W < scene.ImageWidth {
				target, targetFrame = gt.Person, frame
				break
			}
		}
	}
	require.NotZero(t, target)
	_, err = va.SetVATarget(ctx, multiedge.TargetRequest{Target: "someone", Crops: sc.QueryImages(target)})
	require.NoError(t, err)
	for frame := 0; frame <= targetFrame; frame++ {
		img, truth := sc.Render(camera, frame)
		resp, err := va.Analyze(ctx, multiedge.FrameRequest{Camera: scene.CameraName(camera), Frame: frame, Image: img})
		require.NoError(t, err)
		if frame < targetFrame {
			continue
		}
		var marked []multiedge.Detection
		for _, detection := range resp.Detections {
			if detection.Target {
				marked = append(marked, detection)
			}
		}
		require.Len(t, marked, 1)
		for _, gt := range truth {
			if gt.Person == target {
				require.GreaterOrEqual(t, marked[0].Box.IoU(gt.Box), 0.5)
			}
		}
	}
	img, _ := sc.Render(1, 0)
	_, err = va.Analyze(ctx, multiedge.FrameRequest{Camera: scene.CameraName(1), Frame: 0, Image: img})
	var status *multiedge.StatusError
	require.ErrorAs(t, err, &status)
	require.Equal(t, http.StatusBadRequest, status.Code)
}
