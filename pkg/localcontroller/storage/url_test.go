package storage

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	tests := map[string]struct {
		raw      string
		want     Location
		wantTree bool
		wantErr  string
	}{
		"s3 object": {
			raw:  "s3://models/il/round1/model.pb",
			want: Location{Scheme: "s3", Bucket: "models", Key: "il/round1/model.pb"},
		},
		"s3 prefix": {
			raw:      "s3://models/il/round1/",
			want:     Location{Scheme: "s3", Bucket: "models", Key: "il/round1/"},
			wantTree: true,
		},
		"s3 whole bucket without slash": {
			raw:      "s3://models",
			want:     Location{Scheme: "s3", Bucket: "models"},
			wantTree: true,
		},
		"s3 whole bucket with slash": {
			raw:      "s3://models/",
			want:     Location{Scheme: "s3", Bucket: "models"},
			wantTree: true,
		},
		"scheme is case-insensitive": {
			raw:  "S3://models/a",
			want: Location{Scheme: "s3", Bucket: "models", Key: "a"},
		},
		"s3 key with spaces, query-like and fragment-like characters stays literal": {
			raw:  "s3://models/a b?x=1#y",
			want: Location{Scheme: "s3", Bucket: "models", Key: "a b?x=1#y"},
		},
		"host file": {
			raw:  "/data/helmet/train_data.txt",
			want: Location{Path: "/data/helmet/train_data.txt"},
		},
		"host directory keeps its trailing slash": {
			raw:      "/output/train/",
			want:     Location{Path: "/output/train/"},
			wantTree: true,
		},
		"host path is cleaned": {
			raw:  "/data//helmet/./index.txt",
			want: Location{Path: "/data/helmet/index.txt"},
		},
		"host root": {
			raw:      "/",
			want:     Location{Path: "/"},
			wantTree: true,
		},
		"empty":                    {raw: "", wantErr: "empty storage URL"},
		"relative path":            {raw: "data/index.txt", wantErr: "host paths must be absolute"},
		"dot relative path":        {raw: "./data/index.txt", wantErr: "host paths must be absolute"},
		"host traversal":           {raw: "/data/../etc/shadow", wantErr: `host path contains a ".." element`},
		"host trailing traversal":  {raw: "/data/..", wantErr: `host path contains a ".." element`},
		"http scheme":              {raw: "http://example.com/model.pb", wantErr: `unsupported scheme "http"`},
		"obs scheme":               {raw: "obs://bucket/model.pb", wantErr: `unsupported scheme "obs"`},
		"file scheme":              {raw: "file:///data/model.pb", wantErr: `unsupported scheme "file"`},
		"scheme without slashes":   {raw: "s3:models/a", wantErr: `unsupported scheme "s3"`},
		"empty bucket":             {raw: "s3:///key", wantErr: "empty bucket"},
		"empty bucket and key":     {raw: "s3://", wantErr: "empty bucket"},
		"invalid bucket":           {raw: "s3://ab/key", wantErr: `bucket "ab"`},
		"bucket traversal":         {raw: "s3://../key", wantErr: `bucket ".."`},
		"s3 traversal":             {raw: "s3://models/a/../../other/x", wantErr: `key contains a ".." element`},
		"s3 leading traversal":     {raw: "s3://models/../x", wantErr: `key contains a ".." element`},
		"s3 trailing traversal":    {raw: "s3://models/a/..", wantErr: `key contains a ".." element`},
		"s3 dot element":           {raw: "s3://models/a/./x", wantErr: `empty or "." element`},
		"s3 empty element":         {raw: "s3://models/a//x", wantErr: `empty or "." element`},
		"s3 key starting with a /": {raw: "s3://models//x", wantErr: `empty or "." element`},
		"NUL byte":                 {raw: "/data/a\x00b", wantErr: "NUL byte"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseURL(tc.raw)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantTree, got.IsTree())
		})
	}
}

// FuzzParseURL checks the promises callers rely on for any input a user can write into a resource:
// nothing accepted can climb out of its bucket or rootfs, and the canonical form parses back to
// the same location.
func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"s3://models/a/b.pb", "s3://models/", "s3://models", "/data/x.txt", "/data/dir/", "/",
		"s3://m/../x", "/a/../b", "relative", "http://h/x", "s3:///x", "/a//b/./c", "S3://bucket/k",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := ParseURL(raw)
		if err != nil {
			return
		}
		switch loc.Scheme {
		case SchemeS3:
			require.NotEmpty(t, loc.Bucket)
			require.Empty(t, loc.Path)
			require.NotContains(t, strings.Split(loc.Key, "/"), "..")
			require.False(t, strings.HasPrefix(loc.Key, "/"))
		case "":
			require.True(t, strings.HasPrefix(loc.Path, "/"))
			require.NotContains(t, strings.Split(loc.Path, "/"), "..")
			require.Empty(t, loc.Bucket)
			require.Empty(t, loc.Key)
		default:
			t.Fatalf("unexpected scheme %q", loc.Scheme)
		}
		again, err := ParseURL(loc.String())
		require.NoError(t, err, "canonical form %q of %q", loc.String(), raw)
		require.Equal(t, loc, again)
	})
}
