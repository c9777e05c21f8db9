package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTransmitterEffective(t *testing.T) {
	s3 := &S3Transmitter{AggregationDataPath: "s3://bucket/agg", CredentialName: "creds"}
	tests := map[string]struct {
		transmitter *Transmitter
		want        TransmitterKind
		wantIgnored bool
	}{
		"no transmitter":                  {transmitter: nil, want: TransmitterWS},
		"empty transmitter":               {transmitter: &Transmitter{}, want: TransmitterWS},
		"ws only":                         {transmitter: &Transmitter{WS: &WSTransmitter{}}, want: TransmitterWS},
		"s3 only":                         {transmitter: &Transmitter{S3: s3}, want: TransmitterS3},
		"both, as upstream's YOLO sample": {transmitter: &Transmitter{S3: s3, WS: &WSTransmitter{}}, want: TransmitterS3, wantIgnored: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.transmitter.Effective())
			if tc.wantIgnored {
				require.Equal(t, "spec.transmitter sets both s3 and ws; s3 is used and ws is ignored", tc.transmitter.Ignored())
			} else {
				require.Empty(t, tc.transmitter.Ignored())
			}
		})
	}
}

// TestTransmitterKindsAreUpstreamEnvValues pins the values upstream's Python library reads from
// TRANSMITTER.
func TestTransmitterKindsAreUpstreamEnvValues(t *testing.T) {
	require.Equal(t, "ws", string(TransmitterWS))
	require.Equal(t, "s3", string(TransmitterS3))
}
