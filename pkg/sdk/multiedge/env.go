package multiedge

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/sedna-go/sedna/pkg/sdk/env"
)

// Environment variables of multi-edge workers. The *_BIND_URL/_PORT pairs and their defaults are
// upstream's (contract §5.1): clients dial <host>:<port>.
const (
	EnvToken          = "SEDNA_MULTIEDGE_TOKEN"
	EnvAllowAnonymous = "SEDNA_MULTIEDGE_ALLOW_ANONYMOUS"
	EnvKafkaEnabled   = "KAFKA_ENABLED"
	EnvPodIP          = "POD_IP"

	EnvFEURL    = "FE_MODEL_BIND_URL"
	EnvFEPort   = "FE_MODEL_BIND_PORT"
	EnvReIDURL  = "REID_MODEL_BIND_URL"
	EnvReIDPort = "REID_MODEL_BIND_PORT"
	EnvDetURL   = "DET_MODEL_BIND_URL"
	EnvDetPort  = "DET_MODEL_BIND_PORT"

	DefaultFEHost   = "feature-extraction-fe"
	DefaultFEPort   = 6000
	DefaultReIDHost = "reid-reid"
	DefaultReIDPort = 5000
	DefaultDetHost  = "video-analytics-videoanalytics"
	DefaultDetPort  = 4000
)

// Config is what a multi-edge worker reads from its environment.
type Config struct {
	Token          string
	AllowAnonymous bool
	// BindHost is the address servers listen on: the pod IP when given, else all addresses.
	BindHost string
	// FE, ReID and Det are base URLs (http://host:port) of the three servers.
	FE, ReID, Det string
	// FEPort, ReIDPort, DetPort are the ports a server of that kind listens on.
	FEPort, ReIDPort, DetPort int
}

// ConfigFromEnv reads the contract. Kafka transport (KAFKA_ENABLED) is not implemented and is
// refused rather than ignored.
func ConfigFromEnv(ctx *env.Context) (Config, error) {
	kafka, err := ctx.Bool(EnvKafkaEnabled, false)
	if err != nil {
		return Config{}, err
	}
	if kafka {
		return Config{}, errors.New("KAFKA_ENABLED=true: this worker speaks HTTP only; set kafkaSupport: false")
	}
	anonymous, err := ctx.Bool(EnvAllowAnonymous, false)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Token: strings.TrimSpace(ctx.Get(EnvToken, "")), AllowAnonymous: anonymous, BindHost: ctx.Get(EnvPodIP, "0.0.0.0")}
	for _, endpoint := range []struct {
		urlEnv, portEnv, host string
		port                  int
		base                  *string
		bindPort              *int
	}{
		{EnvFEURL, EnvFEPort, DefaultFEHost, DefaultFEPort, &cfg.FE, &cfg.FEPort},
		{EnvReIDURL, EnvReIDPort, DefaultReIDHost, DefaultReIDPort, &cfg.ReID, &cfg.ReIDPort},
		{EnvDetURL, EnvDetPort, DefaultDetHost, DefaultDetPort, &cfg.Det, &cfg.DetPort},
	} {
		port, err := ctx.Port(endpoint.portEnv, endpoint.port)
		if err != nil {
			return Config{}, err
		}
		host := strings.TrimPrefix(strings.TrimPrefix(ctx.Get(endpoint.urlEnv, endpoint.host), "http://"), "/")
		if host == "" || strings.ContainsAny(host, "/?#@ ") {
			return Config{}, fmt.Errorf("environment variable %s=%q is not a host name", endpoint.urlEnv, host)
		}
		*endpoint.base = "http://" + net.JoinHostPort(host, strconv.Itoa(port))
		*endpoint.bindPort = port
	}
	return cfg, nil
}

// ServerOptions returns the admission settings for a server of this worker.
func (c Config) ServerOptions() ServerOptions {
	return ServerOptions{Token: c.Token, AllowAnonymous: c.AllowAnonymous}
}

// BindAddress is host:port for a server listening on port.
func (c Config) BindAddress(port int) string {
	return net.JoinHostPort(c.BindHost, strconv.Itoa(port))
}
