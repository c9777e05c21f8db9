// Package app is sedna-lc's command: upstream's environment (GM_ADDRESS, NODENAME, BIND_PORT,
// ROOTFS_MOUNT_DIR), NODE_IP (the worker API's address) and flags → the durable store, the
// managers, the GM client and the worker API.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/cmd/internal/logging"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/gmclient"
	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/dataset"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/incrementallearning"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/lifelonglearning"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/model"
	"github.com/sedna-go/sedna/pkg/localcontroller/server"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Options configure the LC. Each has an upstream environment variable or a flag.
type Options struct {
	GMAddress    string // GM_ADDRESS: host:port or wss://host:port/
	NodeName     string // NODENAME (fallback HOSTNAME)
	BindPort     int    // BIND_PORT
	BindAddress  string // NODE_IP: the worker API's address, required
	Rootfs       string // ROOTFS_MOUNT_DIR
	TokenFile    string
	CAFile       string
	ServerName   string
	DataDir      string
	AllowedRoots []string
	// DatasetPeriod is how often each dataset's index file is counted.
	DatasetPeriod time.Duration
	// OutboxMaxBytes is the byte budget of the store's outbox of reports to GM.
	OutboxMaxBytes int64
	// KBServer is the knowledge base's URL lifelong learning indexes are downloaded from.
	KBServer string
	// KBTokenFile holds the token presented to the knowledge base ("" sends none).
	KBTokenFile string
}

// The dispatcher hears of every applied snapshot, so managers that resend after one (federated
// learning's Forwarder) get the call.
var _ gmclient.SnapshotObserver = (*managers.Dispatcher)(nil)

// NewCommand returns the sedna-lc command.
func NewCommand() *cobra.Command {
	opts := Options{}
	cmd := &cobra.Command{
		Use:   "sedna-lc",
		Short: "Sedna local controller: the edge daemon of one node",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmd.Context(), opts)
		},
		SilenceUsage: true,
	}
	logging.KeepContextualLoggers(cmd)
	flags := cmd.Flags()
	flags.StringVar(&opts.GMAddress, "gm-address", os.Getenv("GM_ADDRESS"), "GM channel address, host:port or wss://host:port/ (env GM_ADDRESS)")
	flags.StringVar(&opts.NodeName, "node-name", firstNonEmpty(os.Getenv("NODENAME"), os.Getenv("HOSTNAME")), "this node's name (env NODENAME, then HOSTNAME)")
	flags.IntVar(&opts.BindPort, "bind-port", envInt("BIND_PORT", 9100), "worker API port (env BIND_PORT)")
	flags.StringVar(&opts.BindAddress, "bind-address", os.Getenv("NODE_IP"), "worker API address (env NODE_IP, the node's address); 0.0.0.0 or :: listens on all interfaces")
	flags.StringVar(&opts.Rootfs, "rootfs", firstNonEmpty(os.Getenv("ROOTFS_MOUNT_DIR"), "/rootfs"), "where the host's / is mounted (env ROOTFS_MOUNT_DIR)")
	flags.StringVar(&opts.TokenFile, "token-file", "/var/run/secrets/sedna/token", "projected service-account token presented to GM")
	flags.StringVar(&opts.CAFile, "ca-file", "", "PEM bundle to verify GM's certificate (default: system roots)")
	flags.StringVar(&opts.ServerName, "server-name", "", "name GM's certificate is verified against (default: GM's host)")
	flags.StringVar(&opts.DataDir, "data-dir", "", "directory of the LC's store (default: <rootfs>/var/lib/sedna)")
	flags.DurationVar(&opts.DatasetPeriod, "dataset-check-period", dataset.DefaultPeriod, "how often each dataset's index file is counted")
	flags.Int64Var(&opts.OutboxMaxBytes, "outbox-max-bytes", store.DefaultMaxOutboxBytes, "byte budget of the outbox of reports waiting for GM; worker reports may use half of it, worker metrics a quarter")
	flags.StringVar(&opts.KBServer, "kb-server", os.Getenv("KB_SERVER"), "knowledge base URL (http://host:9020) lifelong learning indexes are downloaded from for deploy (env KB_SERVER)")
	flags.StringVar(&opts.KBTokenFile, "kb-token-file", "", "file holding the token presented to the knowledge base as Authorization: Bearer")
	flags.StringSliceVar(&opts.AllowedRoots, "allowed-data-roots", []string{"/data"}, "host directories datasets are read from and job output is written to (nothing else of the host is touched)")
	return cmd
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func (o *Options) validate() error {
	var problems []string
	if o.GMAddress == "" {
		problems = append(problems, "GM_ADDRESS (--gm-address) is required")
	}
	if o.NodeName == "" {
		problems = append(problems, "NODENAME (--node-name) is required")
	}
	if o.BindPort < 1 || o.BindPort > 65535 {
		problems = append(problems, fmt.Sprintf("BIND_PORT %d is not a port", o.BindPort))
	}
	// The worker API is reachable from wherever it listens: by default only the node's address,
	// never every interface unless asked for (docs/security.md).
	if o.BindAddress == "" {
		problems = append(problems, "the worker API address is unset: set NODE_IP to the node's address (the DaemonSet sets it from status.hostIP) or pass --bind-address (0.0.0.0 for all interfaces)")
	} else if _, err := netip.ParseAddr(o.BindAddress); err != nil {
		problems = append(problems, fmt.Sprintf("--bind-address (NODE_IP) %q is not an IP address", o.BindAddress))
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	return nil
}

// reporter queues reports in the durable outbox and wakes the GM client.
type reporter struct {
	store *store.Store
	mu    sync.Mutex
	gm    *gmclient.Client
}

func (r *reporter) Report(ctx context.Context, key channel.Key, content []byte) error {
	return r.ReportAs(ctx, key, content, store.EnqueueOptions{})
}

// ReportAs queues a report with its outbox class and stream (managers.OutboxReporter).
func (r *reporter) ReportAs(_ context.Context, key channel.Key, content []byte, opts store.EnqueueOptions) error {
	if _, err := gmclient.EnqueueReportAs(r.store, key, content, opts); err != nil {
		return fmt.Errorf("queueing a report about %s: %w", key, err)
	}
	r.mu.Lock()
	gm := r.gm
	r.mu.Unlock()
	if gm != nil {
		gm.Notify()
	}
	return nil
}

// Run runs the LC until ctx ends.
func Run(ctx context.Context, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("node", opts.NodeName)
	ctx = klog.NewContext(ctx, logger)
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = filepath.Join(opts.Rootfs, "var", "lib", "sedna")
	}
	st, err := store.Open(filepath.Join(dataDir, "lc.db"), store.Options{MaxOutboxBytes: opts.OutboxMaxBytes})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error(err, "Closing the store")
		}
	}()

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	resolver, err := datasetindex.NewResolver(opts.Rootfs, opts.AllowedRoots)
	if err != nil {
		return fmt.Errorf("configuring the allowed data roots: %w", err)
	}
	reportHostfsMode(logger, registry, hostfs.Mode())
	// Job output (round data, deployed models) is written below the same roots; a root mounted
	// read-only would make every round stall, so say so now rather than at the first round.
	for _, root := range opts.AllowedRoots {
		if err := hostfs.CheckWritable(filepath.Join(opts.Rootfs, root)); err != nil {
			logger.Info("Warning: an allowed data root is not writable; learning jobs whose outputDir is under it will stall",
				"root", root, "err", err)
		}
	}
	rep := &reporter{store: st}
	datasets, err := dataset.New(st, rep, dataset.Options{
		Resolver: resolver, Rootfs: opts.Rootfs, Period: opts.DatasetPeriod, ScratchDir: filepath.Join(dataDir, "scratch"),
	})
	if err != nil {
		return fmt.Errorf("building the dataset manager: %w", err)
	}
	models, err := model.New(st, model.Options{Rootfs: opts.Rootfs, Logger: logger})
	if err != nil {
		return fmt.Errorf("building the model manager: %w", err)
	}
	// Round data and deployed models are written only below the data roots datasets are read from.
	learning, err := incrementallearning.New(st, rep, models, incrementallearning.Options{
		Resolver: resolver, Rootfs: opts.Rootfs, WriteRoots: opts.AllowedRoots,
	})
	if err != nil {
		return fmt.Errorf("building the incremental learning manager: %w", err)
	}
	kbToken := ""
	if opts.KBTokenFile != "" {
		raw, err := os.ReadFile(opts.KBTokenFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// build/lc mounts the token from an optional Secret: a cluster without the knowledge
			// base has none. The knowledge base refuses anonymous requests unless it is open.
			logger.Info("No knowledge base token file: requests to the knowledge base carry no token", "file", opts.KBTokenFile)
		case err != nil:
			return fmt.Errorf("reading the knowledge base token: %w", err)
		default:
			kbToken = strings.TrimSpace(string(raw))
		}
	}
	lifelong, err := lifelonglearning.New(st, rep, lifelonglearning.Options{
		Resolver: resolver, KBServer: opts.KBServer, KBToken: kbToken,
	})
	if err != nil {
		return fmt.Errorf("building the lifelong learning manager: %w", err)
	}
	all := []managers.Manager{datasets, models, learning, lifelong}
	for _, kind := range managers.ForwardedKinds {
		forwarder, err := managers.NewForwarder(kind, rep)
		if err != nil {
			return fmt.Errorf("building the %s forwarder: %w", kind, err)
		}
		all = append(all, forwarder)
	}
	dispatcher, err := managers.NewDispatcher(all...)
	if err != nil {
		return fmt.Errorf("building the dispatcher: %w", err)
	}
	gm, err := gmclient.New(gmclient.Options{
		URL: opts.GMAddress, NodeName: opts.NodeName, TokenFile: opts.TokenFile, CAFile: opts.CAFile,
		ServerName: opts.ServerName, Registerer: registry,
	}, st, dispatcher)
	if err != nil {
		return fmt.Errorf("building the GM client: %w", err)
	}
	rep.mu.Lock()
	rep.gm = gm
	rep.mu.Unlock()

	// The LC serves its workers from what it stored, whether or not GM is reachable.
	if err := dispatcher.Replay(ctx, st); err != nil {
		return fmt.Errorf("replaying the stored resources: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); gm.Run(ctx) }()
	go func() { defer wg.Done(); dispatcher.Run(ctx) }()
	addr := net.JoinHostPort(opts.BindAddress, strconv.Itoa(opts.BindPort))
	logger.Info("Starting the LC", "gm", opts.GMAddress, "workerAPI", addr, "store", st.Path())
	if bindAddr, err := netip.ParseAddr(opts.BindAddress); err == nil && bindAddr.IsUnspecified() {
		logger.Info("Warning: the worker API listens on all interfaces, not only the node's address", "address", addr)
	}
	err = server.New(server.Options{Addr: addr, Registry: registry}, st, dispatcher).Run(ctx)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("serving the worker API: %w", err)
	}
	return nil
}

// reportHostfsMode says which mechanism confines the LC's file operations below the data roots
// (hostfs.Mode): in the log at start, a warning for the os.Root fallback, and as the gauge
// sedna_lc_hostfs_openat2 (1 for openat2, 0 for the fallback) on reg.
func reportHostfsMode(logger klog.Logger, reg prometheus.Registerer, mode string) {
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sedna_lc_hostfs_openat2",
		Help: "1 when the LC opens host files below the data roots with openat2 (no symlink followed), 0 when it falls back to os.Root (symlinks that stay inside a root are followed).",
	})
	reg.MustRegister(gauge)
	if mode == hostfs.ModeBeneath {
		gauge.Set(1)
		logger.Info("Host files are opened with openat2: no symlink below a data root is followed", "hostfsMode", mode)
		return
	}
	gauge.Set(0)
	logger.Info("Warning: openat2 is unavailable (old kernel or seccomp profile); host files are opened with os.Root, "+
		"which follows symlinks that stay inside a data root: a job's workers can redirect the LC's reads and writes "+
		"to other files below the same root; allow openat2 (Linux 5.6+) to close this", "hostfsMode", mode)
}
