package env

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGetLookupRule(t *testing.T) {
	tests := map[string]struct {
		vars map[string]string
		name string
		want string
	}{
		"exact name wins":                {vars: map[string]string{"job_name": "a", "JOB_NAME": "b"}, name: "job_name", want: "a"},
		"falls back to upper case":       {vars: map[string]string{"JOB_NAME": "b"}, name: "job_name", want: "b"},
		"empty exact falls to upper":     {vars: map[string]string{"job_name": "", "JOB_NAME": "b"}, name: "job_name", want: "b"},
		"empty means default":            {vars: map[string]string{"JOB_NAME": ""}, name: "JOB_NAME", want: "def"},
		"missing means default":          {vars: map[string]string{}, name: "JOB_NAME", want: "def"},
		"lower case is not tried for UP": {vars: map[string]string{"job_name": "a"}, name: "JOB_NAME", want: "def"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, New(MapLookup(tc.vars)).Get(tc.name, "def"))
		})
	}
}

func TestDefaults(t *testing.T) {
	c := New(MapLookup(nil))
	require.Equal(t, "http://127.0.0.1:9100", c.LCServerURL())
	require.Equal(t, "sedna", c.JobName())
	require.Equal(t, "/home/data", c.DataPathPrefix())
	port, err := c.BigModelPort()
	require.NoError(t, err)
	require.Equal(t, 5000, port)
	bind, err := c.BigModelBindPort()
	require.NoError(t, err)
	require.Equal(t, 5000, bind)
	period, err := c.LCPeriod()
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, period)
	mode, err := c.MiningMode()
	require.NoError(t, err)
	require.Equal(t, MiningInferenceThenMining, mode)
	params, err := c.HEMParameters()
	require.NoError(t, err)
	require.Empty(t, params)
}

func TestJobNameShadowsServiceName(t *testing.T) {
	// Upstream's default for JOB_NAME means SERVICE_NAME is never the owner.
	c := New(MapLookup(map[string]string{ServiceName: "ji-svc"}))
	require.Equal(t, "sedna", c.JobName())
	require.Equal(t, "ji-svc", c.ServiceName())
}

func TestLCServerTrailingSlash(t *testing.T) {
	c := New(MapLookup(map[string]string{LCServer: "http://lc:9100/"}))
	require.Equal(t, "http://lc:9100", c.LCServerURL())
}

func TestTypedGetters(t *testing.T) {
	tests := map[string]struct {
		vars    map[string]string
		get     func(*Context) (any, error)
		want    any
		wantErr string
	}{
		"port ok":        {vars: map[string]string{BigModelPort: "30500"}, get: func(c *Context) (any, error) { return c.BigModelPort() }, want: 30500},
		"port not int":   {vars: map[string]string{BigModelPort: "http"}, get: func(c *Context) (any, error) { return c.BigModelPort() }, wantErr: "BIG_MODEL_PORT=\"http\" is not an integer"},
		"port 0":         {vars: map[string]string{BigModelBindPort: "0"}, get: func(c *Context) (any, error) { return c.BigModelBindPort() }, wantErr: "BIG_MODEL_BIND_PORT=0 is not a TCP port"},
		"port 65536":     {vars: map[string]string{BigModelPort: "65536"}, get: func(c *Context) (any, error) { return c.BigModelPort() }, wantErr: "BIG_MODEL_PORT=65536"},
		"period seconds": {vars: map[string]string{LCPeriod: "5"}, get: func(c *Context) (any, error) { return c.LCPeriod() }, want: 5 * time.Second},
		"period float":   {vars: map[string]string{LCPeriod: "0.5"}, get: func(c *Context) (any, error) { return c.LCPeriod() }, want: 500 * time.Millisecond},
		"period go":      {vars: map[string]string{LCPeriod: "2m"}, get: func(c *Context) (any, error) { return c.LCPeriod() }, want: 2 * time.Minute},
		"period zero":    {vars: map[string]string{LCPeriod: "0"}, get: func(c *Context) (any, error) { return c.LCPeriod() }, wantErr: "LC_PERIOD=\"0\" must be a positive period"},
		"period junk":    {vars: map[string]string{LCPeriod: "soon"}, get: func(c *Context) (any, error) { return c.LCPeriod() }, wantErr: "LC_PERIOD=\"soon\" is neither seconds nor a duration"},
		"bool python":    {vars: map[string]string{"MODEL_HOT_UPDATE": "True"}, get: func(c *Context) (any, error) { return c.Bool("MODEL_HOT_UPDATE", false) }, want: true},
		"bool junk":      {vars: map[string]string{"MODEL_HOT_UPDATE": "yes"}, get: func(c *Context) (any, error) { return c.Bool("MODEL_HOT_UPDATE", false) }, wantErr: "MODEL_HOT_UPDATE=\"yes\" is not a boolean"},
		"mode other":     {vars: map[string]string{MiningMode: MiningThenInference}, get: func(c *Context) (any, error) { return c.MiningMode() }, want: MiningThenInference},
		"mode bad":       {vars: map[string]string{MiningMode: "mine"}, get: func(c *Context) (any, error) { return c.MiningMode() }, wantErr: "MINING_MODE=\"mine\""},
		"hem params": {
			vars: map[string]string{HEMParameters: `[{"key":"threshold_img","value":"0.9"},{"key":"threshold_box","value":"0.1"}]`},
			get:  func(c *Context) (any, error) { return c.HEMParameters() },
			want: map[string]string{"threshold_img": "0.9", "threshold_box": "0.1"},
		},
		"hem params not json": {vars: map[string]string{HEMParameters: `{"a":1}`}, get: func(c *Context) (any, error) { return c.HEMParameters() }, wantErr: "HEM_PARAMETERS is not a JSON list"},
		"hem params no key":   {vars: map[string]string{HEMParameters: `[{"value":"1"}]`}, get: func(c *Context) (any, error) { return c.HEMParameters() }, wantErr: "entry 0 has no key"},
		"hem params dup":      {vars: map[string]string{HEMParameters: `[{"key":"a","value":"1"},{"key":"a","value":"2"}]`}, get: func(c *Context) (any, error) { return c.HEMParameters() }, wantErr: "repeats key \"a\""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.get(New(MapLookup(tc.vars)))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
