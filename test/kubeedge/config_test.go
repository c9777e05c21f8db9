package kubeedge

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A setting on a section or field the release's default configuration does not have fails
// instead of being written where KubeEdge would ignore it.
func TestSettingsRefuseUnknownPaths(t *testing.T) {
	doc := map[string]any{"modules": map[string]any{"edged": map[string]any{"enable": true, "rootDirectory": "/var/lib/kubelet"}}}
	var s settings
	s.add("modules.edged.rootDirectory", "/tmp/x")
	s.addOptional("modules.edged.nodeIP", "10.0.0.1")
	require.NoError(t, s.apply(doc))
	edged := doc["modules"].(map[string]any)["edged"].(map[string]any)
	require.Equal(t, "/tmp/x", edged["rootDirectory"])
	require.Equal(t, "10.0.0.1", edged["nodeIP"])

	for _, bad := range []settings{
		{{path: "modules.edged.rootDirectry", value: "/x"}},
		{{path: "modules.edgd.rootDirectory", value: "/x"}},
		{{path: "modules.edgd.nodeIP", value: "x", optional: true}},
		{{path: "modules.edged.enable.x", value: "x"}},
	} {
		require.Error(t, bad.apply(doc), "%v", bad)
	}
}
