// Package multiedge is the worker library of multi-edge inference: the HTTP endpoints of
// upstream's three servers (contract §5.7: feature extraction under /feature_extraction/,
// re-identification under /reid/, detection under /video_analytics/) with JSON bodies instead of
// upstream's pickle, Go clients for them, the environment contract the workers read, and the
// algorithms a pedestrian pipeline needs: a background-subtraction detector, an appearance
// feature extractor, a per-camera tracker and a cross-camera identity gallery.
//
// Who may call: every endpoint requires "Authorization: Bearer <token>" with the pipeline token
// (SEDNA_MULTIEDGE_TOKEN), which the user's Secret gives to all of a pipeline's workers
// through secretKeyRef; a missing token is 401, a wrong one 403. A server without a token refuses
// to start unless SEDNA_MULTIEDGE_ALLOW_ANONYMOUS=true says so on purpose. Bodies are bounded
// and malformed input is a 400 naming the field.
//
// It reads the environment only through pkg/sdk/env, reports to the local controller only
// through pkg/sdk/lc, and imports nothing of the global manager or local controller.
package multiedge
