package pipeline

import (
	"context"
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
