package localsedna

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/test/integration/framework"
	"github.com/sedna-go/sedna/test/localcluster"
)

// standbyIdentity is the leader-election identity of the standby GM.
const standbyIdentity = "local-sedna-gm-standby"

// GMSlot names one of the two GM processes local Sedna can run: the primary (StartGM) and the
// standby (StartStandbyGM). Both contend for the same Lease, as two replicas of GM's Deployment
// would; only the holder is ready and serves LCs.
type GMSlot int

const (
	PrimaryGM GMSlot = iota
	StandbyGM
)

func (g GMSlot) String() string {
	if g == StandbyGM {
		return "standby"
	}
	return "primary"
}

// StartStandbyGM starts a second sedna-gm with the primary's configuration on ports of its own
// and another identity; it returns once the process runs (it becomes ready only when it holds
// the Lease). A later call restarts it after KillGMSlot. StartGM must have run.
func (s *Sedna) StartStandbyGM(ctx context.Context) error {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	if s.gm == nil {
		return errors.New("the standby GM needs the primary's configuration: call StartGM first")
	}
	start := localcluster.StartProcess
	if s.standby == nil {
		gm, err := s.configureStandby()
		if err != nil {
			return err
		}
		s.standby = gm
	} else if done, _ := s.standby.proc.Exited(); !done {
		return errors.New("the standby sedna-gm is already running")
	} else {
		start = localcluster.RestartProcess // the log of every run is kept
	}
	proc, err := start(ctx, "sedna-gm-standby", filepath.Join(s.opts.BinDir, "sedna-gm"), s.LogDir(),
		s.gmArgs(s.standby.configFile, standbyIdentity))
	if err != nil {
		return err
	}
	s.standby.proc = proc
	return nil
}

// configureStandby writes gm-standby.yaml: the primary's configuration with other ports.
func (s *Sedna) configureStandby() (*gmProcess, error) {
	raw, err := os.ReadFile(s.gm.configFile)
	if err != nil {
		return nil, err
	}
	var cfg config.Config
	if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", s.gm.configFile, err)
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = framework.FreePort(); err != nil {
			return nil, err
		}
	}
	cfg.WebSocket.Port = ports[0]
	cfg.MetricsAddress = fmt.Sprintf("127.0.0.1:%d", ports[1])
	cfg.HealthAddress = fmt.Sprintf("127.0.0.1:%d", ports[2])
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the standby GM's configuration: %w", err)
	}
	configFile := filepath.Join(filepath.Dir(s.gm.configFile), "gm-standby.yaml")
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		return nil, err
	}
	return &gmProcess{
		channelAddr: net.JoinHostPort(s.opts.cloudHost(), strconv.Itoa(ports[0])),
		metricsURL:  fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
		healthURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]),
		configFile:  configFile, ca: s.gm.ca,
	}, nil
}

func (s *Sedna) slot(slot GMSlot) *gmProcess {
	if slot == StandbyGM {
		return s.standby
	}
	return s.gm
}

// KillGMSlot kills the GM of slot with SIGKILL and waits until it is reaped.
func (s *Sedna) KillGMSlot(slot GMSlot) error {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	gm := s.slot(slot)
	if gm == nil || gm.proc == nil {
		return fmt.Errorf("the %s sedna-gm was never started", slot)
	}
	return gm.proc.Kill()
}

// RestartGMSlot starts the GM of slot again after KillGMSlot without waiting for it to be ready:
// it may have to wait for the other GM's Lease.
func (s *Sedna) RestartGMSlot(ctx context.Context, slot GMSlot) error {
	if slot == StandbyGM {
		return s.StartStandbyGM(ctx)
	}
	return s.startGM(ctx, false)
}

// GMRunning reports whether the GM process of slot is running.
func (s *Sedna) GMRunning(slot GMSlot) bool {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	gm := s.slot(slot)
	if gm == nil || gm.proc == nil {
		return false
	}
	done, _ := gm.proc.Exited()
	return !done
}

// GMReady reports whether the GM of slot answers /readyz with 200 (it leads and serves LCs).
func (s *Sedna) GMReady(ctx context.Context, slot GMSlot) bool {
	s.gmMu.Lock()
	gm := s.slot(slot)
	s.gmMu.Unlock()
	if gm == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gm.healthURL, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close() // only the status matters
	return resp.StatusCode == http.StatusOK
}

// GMChannelAddress is the channel address of the GM of slot, "" if it was never configured.
func (s *Sedna) GMChannelAddress(slot GMSlot) string {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	if gm := s.slot(slot); gm != nil {
		return gm.channelAddr
	}
	return ""
}

// GMSlotMetric is GMMetric of the GM of slot.
func (s *Sedna) GMSlotMetric(ctx context.Context, slot GMSlot, sample string) (float64, error) {
	s.gmMu.Lock()
	gm := s.slot(slot)
	s.gmMu.Unlock()
	if gm == nil {
		return 0, fmt.Errorf("the %s sedna-gm was never started", slot)
	}
	return scrapeMetric(ctx, gm.metricsURL, sample)
}

// GMSlotLog is the log of the GM of slot.
func (s *Sedna) GMSlotLog(slot GMSlot) string {
	if slot == StandbyGM {
		return filepath.Join(s.LogDir(), "sedna-gm-standby.log")
	}
	return s.GMLog()
}

func (s *Sedna) stopStandbyGM() error {
	s.gmMu.Lock()
	defer s.gmMu.Unlock()
	if s.standby == nil || s.standby.proc == nil {
		return nil
	}
	return s.standby.proc.Stop()
}
