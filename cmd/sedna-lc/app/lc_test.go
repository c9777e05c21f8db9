package app

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBindAddressDefaultsToNodeIP: the worker API listens on the node's address from NODE_IP,
// BIND_PORT gives its port, and a flag overrides both.
func TestBindAddressDefaultsToNodeIP(t *testing.T) {
	tests := map[string]struct {
		nodeIP, bindPort string
		args             []string
		wantAddress      string
		wantPort         int
	}{
		"NODE_IP and upstream's port":   {nodeIP: "10.0.0.7", wantAddress: "10.0.0.7", wantPort: 9100},
		"BIND_PORT":                     {nodeIP: "10.0.0.7", bindPort: "19100", wantAddress: "10.0.0.7", wantPort: 19100},
		"IPv6 node":                     {nodeIP: "fd00::7", wantAddress: "fd00::7", wantPort: 9100},
		"flag over NODE_IP":             {nodeIP: "10.0.0.7", args: []string{"--bind-address=127.0.0.1"}, wantAddress: "127.0.0.1", wantPort: 9100},
		"all interfaces when asked":     {nodeIP: "10.0.0.7", args: []string{"--bind-address=0.0.0.0"}, wantAddress: "0.0.0.0", wantPort: 9100},
		"flag without NODE_IP":          {args: []string{"--bind-address=192.168.1.5", "--bind-port=9200"}, wantAddress: "192.168.1.5", wantPort: 9200},
		"neither: nothing to listen on": {wantAddress: "", wantPort: 9100},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("NODE_IP", tc.nodeIP)
			t.Setenv("BIND_PORT", tc.bindPort)
			cmd := NewCommand()
			require.NoError(t, cmd.ParseFlags(tc.args))
			address, err := cmd.Flags().GetString("bind-address")
			require.NoError(t, err)
			port, err := cmd.Flags().GetInt("bind-port")
			require.NoError(t, err)
			require.Equal(t, tc.wantAddress, address)
			require.Equal(t, tc.wantPort, port)
		})
	}
}

func TestValidateBindAddress(t *testing.T) {
	valid := Options{GMAddress: "gm.sedna:9000", NodeName: "edge-1", BindPort: 9100}
	tests := map[string]struct {
		address string
		wantErr string
	}{
		"node address":   {address: "10.0.0.7"},
		"IPv6 address":   {address: "fd00::7"},
		"all interfaces": {address: "0.0.0.0"},
		"unset": {
			wantErr: "the worker API address is unset: set NODE_IP to the node's address (the DaemonSet sets it from status.hostIP) or pass --bind-address (0.0.0.0 for all interfaces)",
		},
		"a host name": {address: "edge-1.local", wantErr: `--bind-address (NODE_IP) "edge-1.local" is not an IP address`},
		"with a port": {address: "10.0.0.7:9100", wantErr: `--bind-address (NODE_IP) "10.0.0.7:9100" is not an IP address`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			opts := valid
			opts.BindAddress = tc.address
			err := opts.validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// TestRunRefusesToListenEverywhereByDefault: without NODE_IP or --bind-address the LC stops
// before opening its store or any port, saying what to set.
func TestRunRefusesToListenEverywhereByDefault(t *testing.T) {
	dataDir := t.TempDir()
	err := Run(t.Context(), Options{GMAddress: "gm.sedna:9000", NodeName: "edge-1", BindPort: 9100, DataDir: dataDir})
	require.ErrorContains(t, err, "invalid configuration: the worker API address is unset: set NODE_IP")
	require.NoFileExists(t, dataDir+"/lc.db")
}
