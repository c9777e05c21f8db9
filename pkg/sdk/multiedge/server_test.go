package multiedge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testToken = "pipeline-token-for-tests"

func solid(width, height int, r, g, b uint8) Image {
	img := NewImage(width, height)
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			img.Set(x, y, r, g, b)
		}
	}
	return *img
}

func newTestServers(t *testing.T) (fe, reid *httptest.Server) {
	t.Helper()
	feServer, err := NewFeatureExtractionServer(ExtractFeature, ServerOptions{Token: testToken})
	require.NoError(t, err)
	reidServer, err := NewReIDServer(NewGallery(GalleryOptions{}), ServerOptions{Token: testToken})
	require.NoError(t, err)
	fe, reid = httptest.NewServer(feServer), httptest.NewServer(reidServer)
	t.Cleanup(fe.Close)
	t.Cleanup(reid.Close)
	return fe, reid
}

func TestServerRefusesWithoutToken(t *testing.T) {
	_, err := NewFeatureExtractionServer(ExtractFeature, ServerOptions{})
	require.ErrorContains(t, err, EnvToken, "a server without a token must be a decision")
	_, err = NewReIDServer(NewGallery(GalleryOptions{}), ServerOptions{AllowAnonymous: true})
	require.NoError(t, err)
}

func TestAdmission(t *testing.T) {
	fe, reid := newTestServers(t)
	body, err := json.Marshal(FeatureRequest{Crops: []Image{solid(4, 8, 200, 20, 20)}})
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		url, header string
		want        int
	}{
		"no token":             {url: fe.URL + PathFeatureExtraction, want: http.StatusUnauthorized},
		"wrong token":          {url: fe.URL + PathFeatureExtraction, header: "Bearer nope", want: http.StatusForbidden},
		"not a bearer token":   {url: fe.URL + PathFeatureExtraction, header: "Basic " + testToken, want: http.StatusUnauthorized},
		"right token":          {url: fe.URL + PathFeatureExtraction, header: "Bearer " + testToken, want: http.StatusOK},
		"status needs a token": {url: reid.URL + PathReIDStatus, want: http.StatusUnauthorized},
		"unknown path":         {url: reid.URL + "/reid/nothing", header: "Bearer " + testToken, want: http.StatusNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			method := http.MethodPost
			if strings.HasSuffix(tc.url, "/status") {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, tc.url, bytes.NewReader(body))
			require.NoError(t, err)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			require.Equal(t, tc.want, resp.StatusCode)
			if tc.want != http.StatusOK {
				var problem ErrorResponse
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&problem))
				require.NotEmpty(t, problem.Error)
			}
		})
	}
}

func TestMalformedRequests(t *testing.T) {
	fe, reid := newTestServers(t)
	for name, tc := range map[string]struct {
		url, body, mentions string
	}{
		"not JSON":              {fe.URL + PathFeatureExtraction, `{"crops":`, "not the JSON"},
		"pickle":                {fe.URL + PathFeatureExtraction, "\x80\x04\x95", "not the JSON"},
		"no crops":              {fe.URL + PathFeatureExtraction, `{"crops":[]}`, "crops"},
		"pixels do not fit":     {fe.URL + PathFeatureExtraction, `{"crops":[{"width":2,"height":2,"rgb":"AAAA"}]}`, "crops[0].rgb"},
		"huge image":            {fe.URL + PathFeatureExtraction, `{"crops":[{"width":100000,"height":1,"rgb":""}]}`, "crops[0]"},
		"target without name":   {fe.URL + PathFEUpdateService, `{"crops":[{"width":1,"height":1,"rgb":"AAAA"}]}`, "target"},
		"reid without camera":   {reid.URL + PathReID, `{"frame":1,"tracks":[]}`, "camera"},
		"negative frame":        {reid.URL + PathReID, `{"camera":"a","frame":-1}`, "frame"},
		"empty feature":         {reid.URL + PathReID, `{"camera":"a","frame":1,"tracks":[{"track":1,"feature":[]}]}`, "tracks[0].feature"},
		"track twice":           {reid.URL + PathReID, `{"camera":"a","frame":1,"tracks":[{"track":1,"feature":[1]},{"track":1,"feature":[1]}]}`, "tracks[1].track"},
		"feature lengths":       {reid.URL + PathReID, `{"camera":"a","frame":1,"tracks":[{"track":1,"feature":[1]},{"track":2,"feature":[1,2]}]}`, "tracks[1].feature"},
		"search without vector": {reid.URL + PathReIDSearch, `{"features":[]}`, "features"},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tc.url, strings.NewReader(tc.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			var problem ErrorResponse
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&problem))
			require.Contains(t, problem.Error, tc.mentions)
		})
	}
}

func TestBodyLimit(t *testing.T) {
	server, err := NewFeatureExtractionServer(ExtractFeature, ServerOptions{Token: testToken, MaxBodyBytes: 1024})
	require.NoError(t, err)
	ts := httptest.NewServer(server)
	defer ts.Close()
	client := NewClient(ts.URL, testToken, nil)
	_, err = client.ExtractFeatures(context.Background(), []Image{solid(40, 40, 1, 2, 3)})
	var status *StatusError
	require.True(t, errors.As(err, &status), "%v", err)
	require.Equal(t, http.StatusRequestEntityTooLarge, status.Code)
}

func TestClientsEndToEnd(t *testing.T) {
	fe, reid := newTestServers(t)
	ctx := context.Background()
	feClient, reidClient := NewClient(fe.URL, testToken, nil), NewClient(reid.URL, testToken, nil)

	red, blue := solid(6, 16, 220, 30, 30), solid(6, 16, 30, 30, 220)
	features, err := feClient.ExtractFeatures(ctx, []Image{red, blue})
	require.NoError(t, err)
	require.Len(t, features, 2)
	require.Len(t, features[0], FeatureLength)
	require.Greater(t, CosineDistance(features[0], features[1]), 0.5)

	_, err = feClient.TargetFeatures(ctx)
	var status *StatusError
	require.True(t, errors.As(err, &status))
	require.Equal(t, http.StatusNotFound, status.Code)
	set, err := feClient.SetFETarget(ctx, TargetRequest{Target: "red", Crops: []Image{red}})
	require.NoError(t, err)
	got, err := feClient.TargetFeatures(ctx)
	require.NoError(t, err)
	require.Equal(t, set, got)

	// Camera a sees red (track 1) and blue (track 2); later camera b sees red as its track 7.
	first, err := reidClient.ReID(ctx, ReIDRequest{Camera: "a", Frame: 0, Tracks: []TrackObservation{{Track: 1, Feature: features[0]}, {Track: 2, Feature: features[1]}}})
	require.NoError(t, err)
	require.True(t, first.Identities[0].New)
	require.NotEqual(t, first.Identities[0].Identity, first.Identities[1].Identity)
	later, err := reidClient.ReID(ctx, ReIDRequest{Camera: "b", Frame: 50, Tracks: []TrackObservation{{Track: 7, Feature: features[0]}}})
	require.NoError(t, err)
	require.Equal(t, first.Identities[0].Identity, later.Identities[0].Identity)
	require.False(t, later.Identities[0].New)

	results, err := reidClient.Search(ctx, [][]float64{features[1]}, 1)
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Equal(t, first.Identities[1].Identity, results[0].Identity)
	require.Equal(t, "a", results[0].Sightings[0].Camera)

	status2, err := reidClient.Status(ctx, ServiceReID)
	require.NoError(t, err)
	require.True(t, status2.Ready)
	require.Equal(t, 2, status2.Counters[PathReID])
}

// TestHTTPServerTimeouts: every pipeline server (Serve, and pedestrians-search) bounds how long
// a connection may sit idle or take for a request, sized so that the largest body still arrives
// on a slow link and a handler's downstream call still fits.
func TestHTTPServerTimeouts(t *testing.T) {
	server := NewHTTPServer(context.Background(), http.NotFoundHandler())
	require.Equal(t, ReadHeaderTimeout, server.ReadHeaderTimeout)
	require.Equal(t, IdleTimeout, server.IdleTimeout)
	require.Positive(t, server.IdleTimeout)
	require.Equal(t, ReadTimeout, server.ReadTimeout)
	require.Equal(t, WriteTimeout, server.WriteTimeout)
	const slowLinkBytesPerSecond = 140_000
	require.GreaterOrEqual(t, server.ReadTimeout.Seconds(), float64(DefaultMaxBodyBytes)/slowLinkBytesPerSecond,
		"the largest body cannot arrive on a slow link")
	clientTimeout := NewClient("http://x", "t", nil).http.Timeout
	require.Greater(t, server.WriteTimeout, server.ReadTimeout+clientTimeout,
		"WriteTimeout starts after the header: it must cover the body, a downstream call and the answer")
}
