package jointinference

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestLCServerEnv(t *testing.T) {
	viaHostIP := func(port string) []corev1.EnvVar {
		return []corev1.EnvVar{hostIPEnv(), {Name: "LC_SERVER", Value: "http://$(SEDNA_HOST_IP):" + port}}
	}
	tests := map[string]struct {
		configured string
		want       []corev1.EnvVar
	}{
		"unset":                {configured: "", want: viaHostIP("9100")},
		"upstream default":     {configured: "http://localhost:9100", want: viaHostIP("9100")},
		"loopback, other port": {configured: "http://127.0.0.1:9300", want: viaHostIP("9300")},
		"loopback, no port":    {configured: "http://localhost", want: viaHostIP("9100")},
		"explicit host":        {configured: "https://lc.sedna:9100", want: []corev1.EnvVar{{Name: "LC_SERVER", Value: "https://lc.sedna:9100"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, lcServerEnv(tc.configured))
		})
	}
}
