package env

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzHEMParameters feeds HEM_PARAMETERS values that come from user CRs: the
// parser must never panic, and whatever it accepts must have no empty keys.
func FuzzHEMParameters(f *testing.F) {
	f.Add(`[{"key":"threshold_img","value":"0.9"}]`)
	f.Add(`[]`)
	f.Add(`[{"key":"a","value":"1"},{"key":"a","value":"2"}]`)
	f.Add(`{"key":"a"}`)
	f.Add(`[{"key":"a","value":1}]`)
	f.Fuzz(func(t *testing.T, raw string) {
		params, err := New(MapLookup(map[string]string{HEMParameters: raw})).HEMParameters()
		if err != nil {
			require.ErrorContains(t, err, HEMParameters)
			return
		}
		for key := range params {
			require.NotEmpty(t, key)
		}
	})
}
