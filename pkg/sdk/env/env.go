package env

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Variable names and upstream defaults (lib/sedna/common/config.py). They are
// exported so that tests and the global manager's injectors can share them.
const (
	LCServer         = "LC_SERVER"
	Namespace        = "NAMESPACE"
	WorkerName       = "WORKER_NAME"
	JobName          = "JOB_NAME"
	ServiceName      = "SERVICE_NAME"
	ModelURL         = "MODEL_URL"
	HEMName          = "HEM_NAME"
	HEMParameters    = "HEM_PARAMETERS"
	BigModelIP       = "BIG_MODEL_IP"
	BigModelPort     = "BIG_MODEL_PORT"
	BigModelBindIP   = "BIG_MODEL_BIND_IP"
	BigModelBindPort = "BIG_MODEL_BIND_PORT"
	LCPeriod         = "LC_PERIOD"
	MiningMode       = "MINING_MODE"
	DataPathPrefix   = "DATA_PATH_PREFIX"

	DefaultLCServer       = "http://127.0.0.1:9100"
	DefaultJobName        = "sedna"
	DefaultBigModelPort   = 5000
	DefaultLCPeriod       = 30 * time.Second
	DefaultDataPathPrefix = "/home/data"

	// MiningInferenceThenMining runs the edge model first and mines its
	// result; MiningThenInference mines the input before any model runs.
	MiningInferenceThenMining = "inference-then-mining"
	MiningThenInference       = "mining-then-inference"
)

// Lookup has the signature of os.LookupEnv, which lets tests supply a map
// instead of mutating the process environment.
type Lookup func(name string) (string, bool)

// Context reads worker variables with upstream's rule. The zero value is not
// usable; build one with New or FromOS.
type Context struct {
	lookup Lookup
}

// New returns a Context reading through lookup.
func New(lookup Lookup) *Context {
	return &Context{lookup: lookup}
}

// FromOS returns a Context reading the process environment.
func FromOS() *Context {
	return New(os.LookupEnv)
}

// MapLookup adapts a map to Lookup, for tests and for callers that assemble
// a worker environment themselves.
func MapLookup(values map[string]string) Lookup {
	return func(name string) (string, bool) {
		value, ok := values[name]
		return value, ok
	}
}

// Get returns the variable or def. Upstream tries the name as given and then
// upper-cased, and treats an empty value like a missing one, because the
// global manager sometimes injects variables with empty values.
func (c *Context) Get(name, def string) string {
	if value, ok := c.lookup(name); ok && value != "" {
		return value
	}
	if upper := strings.ToUpper(name); upper != name {
		if value, ok := c.lookup(upper); ok && value != "" {
			return value
		}
	}
	return def
}

// Int returns the variable as an int or def when it is unset.
func (c *Context) Int(name string, def int) (int, error) {
	raw := c.Get(name, "")
	if raw == "" {
		return def, nil
	}
	value, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return 0, fmt.Errorf("environment variable %s=%q is not an integer: %w", name, raw, err)
	}
	return value, nil
}

// Port returns the variable as a TCP port (1-65535) or def when it is unset.
func (c *Context) Port(name string, def int) (int, error) {
	port, err := c.Int(name, def)
	if err != nil {
		return 0, err
	}
	if port < 1 || port > 65535 {
		return 0, fmt.Errorf("environment variable %s=%d is not a TCP port (1-65535)", name, port)
	}
	return port, nil
}

// Seconds returns the variable, a whole or fractional number of seconds as
// upstream writes it ("30"), as a positive duration or def when it is unset.
// A Go duration string ("30s") is accepted as well.
func (c *Context) Seconds(name string, def time.Duration) (time.Duration, error) {
	raw := strings.TrimSpace(c.Get(name, ""))
	if raw == "" {
		return def, nil
	}
	var period time.Duration
	if seconds, err := strconv.ParseFloat(raw, 64); err == nil {
		period = time.Duration(seconds * float64(time.Second))
	} else if parsed, durErr := time.ParseDuration(raw); durErr == nil {
		period = parsed
	} else {
		return 0, fmt.Errorf("environment variable %s=%q is neither seconds nor a duration: %w", name, raw, err)
	}
	if period <= 0 {
		return 0, fmt.Errorf("environment variable %s=%q must be a positive period", name, raw)
	}
	return period, nil
}

// Bool returns the variable as a bool or def when it is unset. Upstream
// writes Python booleans ("True", "False"), which strconv.ParseBool accepts.
func (c *Context) Bool(name string, def bool) (bool, error) {
	raw := c.Get(name, "")
	if raw == "" {
		return def, nil
	}
	value, err := strconv.ParseBool(strings.TrimSpace(raw))
	if err != nil {
		return false, fmt.Errorf("environment variable %s=%q is not a boolean: %w", name, raw, err)
	}
	return value, nil
}

// LCServerURL is the local controller's base URL without a trailing slash, so
// that callers can append paths.
func (c *Context) LCServerURL() string {
	return strings.TrimRight(c.Get(LCServer, DefaultLCServer), "/")
}

// Namespace is the worker's namespace, used in reports.
func (c *Context) Namespace() string { return c.Get(Namespace, "") }

// WorkerName is the worker's pod name, used in the report URL and body.
func (c *Context) WorkerName() string { return c.Get(WorkerName, "") }

// JobName is the owner name used in reports and the joint inference URL path.
// Upstream defaults JOB_NAME to "sedna" before it looks at SERVICE_NAME, so
// SERVICE_NAME never wins (contract §8 item 24); ServiceName exposes it for
// callers that want the real owner.
func (c *Context) JobName() string { return c.Get(JobName, DefaultJobName) }

// ServiceName is the owning service's name as injected by the global manager.
func (c *Context) ServiceName() string { return c.Get(ServiceName, "") }

// ModelURL is the location of the worker's model.
func (c *Context) ModelURL() string { return c.Get(ModelURL, "") }

// DataPathPrefix is stripped from result URLs so they name host paths.
func (c *Context) DataPathPrefix() string { return c.Get(DataPathPrefix, DefaultDataPathPrefix) }

// BigModelIP is the cloud inference server's address as seen from the edge.
// Upstream falls back to the local IP; we return "" so the caller decides,
// since guessing an interface is rarely what a pod wants.
func (c *Context) BigModelIP() string { return c.Get(BigModelIP, "") }

// BigModelPort is the cloud inference server's port as seen from the edge.
func (c *Context) BigModelPort() (int, error) { return c.Port(BigModelPort, DefaultBigModelPort) }

// BigModelBindIP is the address the cloud server listens on; "" means all.
func (c *Context) BigModelBindIP() string { return c.Get(BigModelBindIP, "") }

// BigModelBindPort is the port the cloud server listens on.
func (c *Context) BigModelBindPort() (int, error) {
	return c.Port(BigModelBindPort, DefaultBigModelPort)
}

// LCPeriod is how often the joint inference edge reports its counters.
func (c *Context) LCPeriod() (time.Duration, error) { return c.Seconds(LCPeriod, DefaultLCPeriod) }

// MiningMode is inference-then-mining (the default) or mining-then-inference.
func (c *Context) MiningMode() (string, error) {
	mode := c.Get(MiningMode, MiningInferenceThenMining)
	switch mode {
	case MiningInferenceThenMining, MiningThenInference:
		return mode, nil
	default:
		return "", fmt.Errorf("environment variable %s=%q is neither %q nor %q",
			MiningMode, mode, MiningInferenceThenMining, MiningThenInference)
	}
}

// HEMName is the registered name of the hard example mining algorithm.
func (c *Context) HEMName() string { return c.Get(HEMName, "") }

// KeyValue is one entry of upstream's parameter lists. Values are strings on
// the wire; consumers convert them.
type KeyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// HEMParameters parses HEM_PARAMETERS, a JSON list of {"key","value"}, into a
// map. Unset yields an empty map. Duplicate keys are rejected because
// upstream would silently keep the last and hide a mistake in the CR.
func (c *Context) HEMParameters() (map[string]string, error) {
	raw := c.Get(HEMParameters, "")
	params := map[string]string{}
	if raw == "" {
		return params, nil
	}
	var entries []KeyValue
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		return nil, fmt.Errorf("environment variable %s is not a JSON list of {\"key\",\"value\"}: %w", HEMParameters, err)
	}
	for i, entry := range entries {
		if entry.Key == "" {
			return nil, fmt.Errorf("environment variable %s entry %d has no key", HEMParameters, i)
		}
		if _, dup := params[entry.Key]; dup {
			return nil, fmt.Errorf("environment variable %s repeats key %q", HEMParameters, entry.Key)
		}
		params[entry.Key] = entry.Value
	}
	return params, nil
}
