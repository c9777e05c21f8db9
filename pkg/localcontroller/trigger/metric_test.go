package trigger

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// crdMetricPattern is the pattern on TriggerCondition.Metric in the API types; parseMetric must
// accept exactly what the API server accepts (up to the index bound).
var crdMetricPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*(\[([0-9]+)\])?$`)

func TestParseMetric(t *testing.T) {
	tests := map[string]struct {
		expr    string
		want    metricRef
		wantErr string
	}{
		"plain name":                    {expr: "num_of_samples", want: metricRef{name: "num_of_samples"}},
		"single letter":                 {expr: "a", want: metricRef{name: "a"}},
		"leading underscore":            {expr: "_x", want: metricRef{name: "_x"}},
		"dots, dashes and digits":       {expr: "eval.f1-score2", want: metricRef{name: "eval.f1-score2"}},
		"index zero":                    {expr: "precision_delta[0]", want: metricRef{name: "precision_delta", index: 0, indexed: true}},
		"multi-digit index":             {expr: "recall[12]", want: metricRef{name: "recall", index: 12, indexed: true}},
		"leading zeros in index":        {expr: "recall[007]", want: metricRef{name: "recall", index: 7, indexed: true}},
		"largest index":                 {expr: "m[2147483647]", want: metricRef{name: "m", index: 2147483647, indexed: true}},
		"empty":                         {expr: "", wantErr: "is empty"},
		"letters in index":              {expr: "a[x]", wantErr: `has index "x", which is not a non-negative integer`},
		"negative index":                {expr: "a[-1]", wantErr: `has index "-1", which is not a non-negative integer`},
		"plus sign in index":            {expr: "a[+1]", wantErr: `has index "+1", which is not a non-negative integer`},
		"space in index":                {expr: "a[ 1]", wantErr: `has index " 1", which is not a non-negative integer`},
		"empty index":                   {expr: "a[]", wantErr: "has an empty index"},
		"unclosed index":                {expr: "a[1", wantErr: "has no ']' closing the index"},
		"text after index":              {expr: "a[1]x", wantErr: `has "x" after the index`},
		"two indexes":                   {expr: "a[1][2]", wantErr: `has "[2]" after the index`},
		"nested bracket":                {expr: "a[[1]", wantErr: `has index "[1", which is not a non-negative integer`},
		"index too large":               {expr: "a[2147483648]", wantErr: "has index 2147483648, which is larger than 2147483647"},
		"index overflowing uint64":      {expr: "a[99999999999999999999999]", wantErr: "which is larger than 2147483647"},
		"no name":                       {expr: "[0]", wantErr: "has no name before the index"},
		"starts with digit":             {expr: "1abc", wantErr: "must start with a letter or '_', not '1'"},
		"starts with dot":               {expr: ".a", wantErr: "must start with a letter or '_', not '.'"},
		"space in name":                 {expr: "num of samples", wantErr: "has ' ' at offset 3"},
		"closing bracket without index": {expr: "a]", wantErr: "has ']' at offset 1"},
		"non-ASCII letter":              {expr: "précision", wantErr: "has 'é' at offset 2"},
		"trailing space":                {expr: "a ", wantErr: "has ' ' at offset 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseMetric(tc.expr)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				// The API server's pattern must reject the same input, except the index bound that
				// only this package enforces.
				if !strings.Contains(tc.wantErr, "larger than") {
					require.False(t, crdMetricPattern.MatchString(tc.expr), "the CRD pattern accepts %q", tc.expr)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.True(t, crdMetricPattern.MatchString(tc.expr), "the CRD pattern rejects %q", tc.expr)
		})
	}
}

func TestMetricRefString(t *testing.T) {
	tests := map[string]struct {
		ref  metricRef
		want string
	}{
		"name only":                  {ref: metricRef{name: "num_of_samples"}, want: "num_of_samples"},
		"indexed":                    {ref: metricRef{name: "precision_delta", index: 3, indexed: true}, want: "precision_delta[3]"},
		"index zero is still shown":  {ref: metricRef{name: "p", index: 0, indexed: true}, want: "p[0]"},
		"index ignored when not set": {ref: metricRef{name: "p", index: 4}, want: "p"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.ref.String())
		})
	}
}

func FuzzParseMetric(f *testing.F) {
	for _, seed := range []string{
		"num_of_samples", "precision_delta[0]", "recall[007]", "a.b-c_d[12]", "_", "a[2147483647]",
		"a[2147483648]", "", "a[x]", "a[]", "a[1", "a[1]x", "a[1][2]", "[0]", "1a", "a b", "a]", "é[1]",
		"a[99999999999999999999999]", "a[\x00]", "\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		ref, err := parseMetric(expr)
		match := crdMetricPattern.FindStringSubmatch(expr)

		if err != nil {
			if err.Error() == "" {
				t.Fatalf("parseMetric(%q) returned an empty error", expr)
			}
			// Only the index bound may reject what the CRD pattern accepts.
			if match != nil {
				index, convErr := strconv.ParseUint(match[2], 10, 64)
				if convErr == nil && index <= maxIndex {
					t.Fatalf("parseMetric(%q) = %v, but the CRD pattern accepts it with a small index", expr, err)
				}
				if !strings.Contains(err.Error(), "larger than") {
					t.Fatalf("parseMetric(%q) rejected a large index with %q", expr, err)
				}
			}
			return
		}
		if match == nil {
			t.Fatalf("parseMetric(%q) = %+v, but the CRD pattern rejects it", expr, ref)
		}
		if ref.indexed != (match[1] != "") {
			t.Fatalf("parseMetric(%q).indexed = %v, CRD pattern index group %q", expr, ref.indexed, match[1])
		}
		if ref.index < 0 || ref.index > maxIndex {
			t.Fatalf("parseMetric(%q).index = %d out of [0, %d]", expr, ref.index, maxIndex)
		}

		// The canonical form parses back to the same reference and is itself a fixed point.
		canonical := ref.String()
		again, err := parseMetric(canonical)
		if err != nil {
			t.Fatalf("parseMetric(%q) of the canonical form of %q: %v", canonical, expr, err)
		}
		if again != ref {
			t.Fatalf("round trip of %q via %q: %+v != %+v", expr, canonical, again, ref)
		}
		if again.String() != canonical {
			t.Fatalf("canonical form is not stable: %q then %q", canonical, again.String())
		}
		// Only leading zeros of the index may differ between the input and its canonical form.
		if !ref.indexed && canonical != expr {
			t.Fatalf("canonical form %q of an unindexed %q differs", canonical, expr)
		}
	})
}
