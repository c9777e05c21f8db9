package multiedge

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/sdk/env"
)

func TestConfigFromEnv(t *testing.T) {
	cfg, err := ConfigFromEnv(env.New(env.MapLookup(map[string]string{})))
	require.NoError(t, err)
	require.Equal(t, "http://feature-extraction-fe:6000", cfg.FE)
	require.Equal(t, "http://reid-reid:5000", cfg.ReID)
	require.Equal(t, "http://video-analytics-videoanalytics:4000", cfg.Det)
	require.Equal(t, "0.0.0.0:4000", cfg.BindAddress(cfg.DetPort))

	cfg, err = ConfigFromEnv(env.New(env.MapLookup(map[string]string{
		EnvFEURL: "fe.ns", EnvFEPort: "7000", EnvToken: " s3cret ", EnvPodIP: "10.0.0.5", EnvKafkaEnabled: "False",
	})))
	require.NoError(t, err)
	require.Equal(t, "http://fe.ns:7000", cfg.FE)
	require.Equal(t, "s3cret", cfg.Token)
	require.Equal(t, "10.0.0.5:7000", cfg.BindAddress(cfg.FEPort))

	for name, vars := range map[string]map[string]string{
		"kafka":          {EnvKafkaEnabled: "True"},
		"port":           {EnvReIDPort: "70000"},
		"host with path": {EnvDetURL: "evil/x"},
		"anonymous typo": {EnvAllowAnonymous: "yes please"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ConfigFromEnv(env.New(env.MapLookup(vars)))
			require.Error(t, err)
		})
	}
}
