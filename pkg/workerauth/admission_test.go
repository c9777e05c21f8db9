package workerauth

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAdmission(t *testing.T) {
	for name, tc := range map[string]struct {
		admission Admission
		header    string
		want      Decision
	}{
		"no token configured admits anyone":      {admission: Admission{}, header: "Bearer whatever", want: Decision{}},
		"right token":                            {admission: Admission{Token: "s3cret"}, header: "Bearer s3cret", want: Decision{Authenticated: true}},
		"wrong token":                            {admission: Admission{Token: "s3cret"}, header: "Bearer s3cre", want: Decision{Status: http.StatusForbidden}},
		"wrong token in compatibility mode":      {admission: Admission{Token: "s3cret", AllowAnonymous: true}, header: "Bearer nope", want: Decision{Status: http.StatusForbidden}},
		"anonymous refused":                      {admission: Admission{Token: "s3cret"}, want: Decision{Status: http.StatusUnauthorized}},
		"anonymous in compatibility mode":        {admission: Admission{Token: "s3cret", AllowAnonymous: true}, want: Decision{}},
		"malformed header in compatibility mode": {admission: Admission{Token: "s3cret", AllowAnonymous: true}, header: "Basic s3cret", want: Decision{Status: http.StatusUnauthorized}},
	} {
		t.Run(name, func(t *testing.T) {
			header := http.Header{}
			if tc.header != "" {
				header.Set("Authorization", tc.header)
			}
			got := tc.admission.Admit(header)
			require.Equal(t, tc.want.Status, got.Status, got.Reason)
			require.Equal(t, tc.want.Authenticated, got.Authenticated)
			if got.Status != 0 {
				require.NotEmpty(t, got.Reason)
			}
		})
	}
	require.False(t, Admission{}.Matches(""), "an unset token matches nothing")
}
