package workerauth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHashToken(t *testing.T) {
	// echo -n abc | sha256sum
	require.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", HashToken("abc"))
	require.NotEqual(t, HashToken("abc"), HashToken("abd"))
	require.Equal(t, strings.ToLower(HashToken("x")), HashToken("x"))
}

func TestEncodeParseRoundTrip(t *testing.T) {
	workers := []Worker{
		{Pod: "job-train-b", Worker: "train-worker", IP: "10.0.0.2", Kind: "train"},
		{Pod: "job-eval-a", Worker: "eval-worker", Kind: "eval"},
		{Pod: "job-infer", Worker: "infer-worker", IP: "fd00::7", Kind: "inference"},
	}
	encoded, err := EncodeWorkers(workers)
	require.NoError(t, err)
	require.Equal(t,
		`[{"pod":"job-eval-a","worker":"eval-worker","kind":"eval"},`+
			`{"pod":"job-infer","worker":"infer-worker","ip":"fd00::7","kind":"inference"},`+
			`{"pod":"job-train-b","worker":"train-worker","ip":"10.0.0.2","kind":"train"}]`,
		encoded)
	require.Equal(t, "job-train-b", workers[0].Pod, "EncodeWorkers must not reorder its argument")

	parsed, err := ParseWorkers(encoded)
	require.NoError(t, err)
	want := []Worker{workers[1], workers[2], workers[0]}
	require.Equal(t, want, parsed)
}

func TestEncodeEmpty(t *testing.T) {
	encoded, err := EncodeWorkers(nil)
	require.NoError(t, err)
	require.Equal(t, "[]", encoded)
	parsed, err := ParseWorkers(encoded)
	require.NoError(t, err)
	require.Empty(t, parsed)
	parsed, err = ParseWorkers("")
	require.NoError(t, err)
	require.Empty(t, parsed)
}

func TestEncodeRejectsInvalid(t *testing.T) {
	for name, worker := range map[string]Worker{
		"no pod":    {Worker: "w", Kind: "edge"},
		"no worker": {Pod: "p", Kind: "edge"},
		"bad ip":    {Pod: "p", Worker: "w", IP: "10.0.0", Kind: "edge"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := EncodeWorkers([]Worker{worker})
			require.Error(t, err)
		})
	}
}

func TestParseWorkersErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		annotation string
		wantErr    string
	}{
		"not json":       {annotation: "pod=a", wantErr: "decoding sedna.io/workers"},
		"object":         {annotation: `{"pod":"a"}`, wantErr: "decoding sedna.io/workers"},
		"trailing":       {annotation: `[] []`, wantErr: "trailing data"},
		"empty pod":      {annotation: `[{"worker":"w","kind":"edge"}]`, wantErr: "entry 0: pod name is empty"},
		"empty worker":   {annotation: `[{"pod":"p","kind":"edge"}]`, wantErr: `entry 0: pod "p": worker name is empty`},
		"ip not address": {annotation: `[{"pod":"p","worker":"w","ip":"node-1","kind":"edge"}]`, wantErr: `ip "node-1" is not an IP address`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWorkers(tc.annotation)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func FuzzParseWorkers(f *testing.F) {
	f.Add(`[{"pod":"p","worker":"w","ip":"10.0.0.1","kind":"edge"}]`)
	f.Add(`[]`)
	f.Add(`[{"pod":"p","worker":"w","ip":"::1"}] x`)
	f.Fuzz(func(t *testing.T, annotation string) {
		workers, err := ParseWorkers(annotation)
		if err != nil {
			return
		}
		encoded, err := EncodeWorkers(workers)
		if err != nil {
			t.Fatalf("parsed workers %+v do not encode: %v", workers, err)
		}
		again, err := ParseWorkers(encoded)
		if err != nil {
			t.Fatalf("re-parsing %q: %v", encoded, err)
		}
		if len(again) != len(workers) {
			t.Fatalf("round trip changed the count: %d != %d", len(again), len(workers))
		}
	})
}
