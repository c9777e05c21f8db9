package workerauth

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseBearer(t *testing.T) {
	for name, tc := range map[string]struct {
		values  []string
		want    string
		wantErr string
	}{
		"none":                   {},
		"one":                    {values: []string{"Bearer abc-DEF_12.~+/=="}, want: "abc-DEF_12.~+/=="},
		"scheme in lower case":   {values: []string{"bearer abc"}, want: "abc"},
		"two headers":            {values: []string{"Bearer abc", "Bearer abc"}, wantErr: "2 Authorization headers"},
		"other scheme":           {values: []string{"Basic abc"}, wantErr: "not \"Bearer <token>\""},
		"no token":               {values: []string{"Bearer"}, wantErr: "not \"Bearer <token>\""},
		"empty token":            {values: []string{"Bearer "}, wantErr: "empty"},
		"two spaces":             {values: []string{"Bearer  abc"}, wantErr: "characters"},
		"trailing space":         {values: []string{"Bearer abc "}, wantErr: "characters"},
		"only padding":           {values: []string{"Bearer =="}, wantErr: "characters"},
		"padding in the middle":  {values: []string{"Bearer a=b"}, wantErr: "characters"},
		"at the length bound":    {values: []string{"Bearer " + strings.Repeat("a", MaxBearerTokenLength)}, want: strings.Repeat("a", MaxBearerTokenLength)},
		"longer than the bound":  {values: []string{"Bearer " + strings.Repeat("a", MaxBearerTokenLength+1)}, wantErr: "too long"},
		"control character":      {values: []string{"Bearer a\tb"}, wantErr: "characters"},
		"non-ASCII":              {values: []string{"Bearer tökén"}, wantErr: "characters"},
		"empty header, one only": {values: []string{""}, wantErr: "not \"Bearer <token>\""},
	} {
		t.Run(name, func(t *testing.T) {
			header := http.Header{}
			for _, v := range tc.values {
				header.Add("Authorization", v)
			}
			got, err := ParseBearer(header)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
