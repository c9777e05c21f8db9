// Command sedna-kb is the lifelong-learning knowledge base server (package kb) with upstream's
// routes under /knowledgebase on port 9020.
//
// Configuration (environment; every variable also has a flag, which wins):
//
//	KnowledgeBaseServer (0.0.0.0:9020)        listen address, as upstream's run_kb.py (an
//	                                          http:// prefix is accepted)
//	KnowledgeBasePath (/var/lib/sedna-kb)     data directory: kb.db and, without
//	                                          SEDNA_KB_FILES, the files
//	SEDNA_KB_FILES (<data dir>/files)         where files live: a directory or an s3:// prefix
//	                                          ending in "/" (then S3_ENDPOINT_URL,
//	                                          ACCESS_KEY_ID, SECRET_ACCESS_KEY)
//	SEDNA_KB_TOKEN, SEDNA_KB_READ_TOKEN       bearer tokens: write (all routes), read (query,
//	                                          download)
//	SEDNA_KB_COMPAT (true without SEDNA_KB_TOKEN, admit requests without a token, as upstream
//	false with it)
//	SEDNA_KB_MAX_FILE_BYTES (1 GiB), SEDNA_KB_MAX_INDEX_BYTES (64 MiB)
//
// Without tokens the defaults reproduce upstream's server: anyone may call every route. Setting
// SEDNA_KB_TOKEN turns compatibility off unless SEDNA_KB_COMPAT=true says otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
	"github.com/sedna-go/sedna/pkg/sdk/env"
)

const (
	envBind          = "KnowledgeBaseServer"
	envDataDir       = "KnowledgeBasePath"
	envFiles         = "SEDNA_KB_FILES"
	envToken         = "SEDNA_KB_TOKEN"
	envReadToken     = "SEDNA_KB_READ_TOKEN"
	envCompat        = "SEDNA_KB_COMPAT"
	envMaxFileBytes  = "SEDNA_KB_MAX_FILE_BYTES"
	envMaxIndexBytes = "SEDNA_KB_MAX_INDEX_BYTES"
	envS3Endpoint    = "S3_ENDPOINT_URL"
	envAccessKeyID   = "ACCESS_KEY_ID"
	envSecretKey     = "SECRET_ACCESS_KEY"

	defaultBind         = "0.0.0.0:9020"
	defaultDataDir      = "/var/lib/sedna-kb"
	readHeaderTimeout   = 10 * time.Second
	idleTimeout         = 2 * time.Minute
	shutdownGracePeriod = 5 * time.Second
)

func main() {
	klog.InitFlags(nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, nil)
	stop()
	if err != nil {
		klog.ErrorS(err, "Knowledge base failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

type config struct {
	bindAddr string
	dataDir  string
	files    string
	s3       *storage.Credentials
	options  kb.Options
}

func parseConfig(args []string, environment *env.Context) (*config, error) {
	fs := flag.NewFlagSet("sedna-kb", flag.ContinueOnError)
	bind := fs.String("bind", environment.Get(envBind, defaultBind), "listen address ("+envBind+")")
	dataDir := fs.String("data-dir", environment.Get(envDataDir, defaultDataDir), "data directory ("+envDataDir+")")
	files := fs.String("files", environment.Get(envFiles, ""), "file directory or s3:// prefix ("+envFiles+")")
	compat := fs.String("compat", environment.Get(envCompat, ""), "admit requests without a token, as upstream's Python clients send none (default: true without "+envToken+", false with it) ("+envCompat+")")
	maxFile := fs.String("max-file-bytes", environment.Get(envMaxFileBytes, ""), "largest upload ("+envMaxFileBytes+")")
	maxIndex := fs.String("max-index-bytes", environment.Get(envMaxIndexBytes, ""), "largest index ("+envMaxIndexBytes+")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	parsed := env.New(env.MapLookup(map[string]string{envCompat: *compat, envMaxFileBytes: *maxFile, envMaxIndexBytes: *maxIndex}))
	cfg := &config{dataDir: *dataDir, files: *files}
	var err error
	if cfg.bindAddr, err = bindAddress(*bind); err != nil {
		return nil, err
	}
	if cfg.dataDir == "" {
		return nil, errors.New("the data directory (" + envDataDir + ") is empty")
	}
	if cfg.files == "" {
		cfg.files = filepath.Join(cfg.dataDir, "files")
	}
	if !strings.HasPrefix(cfg.files, "s3://") {
		if err := checkFilesOutsideData(cfg.files, cfg.dataDir); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(cfg.files, "s3://") {
		if cfg.s3, err = s3Credentials(environment); err != nil {
			return nil, err
		}
	}
	opts := &cfg.options
	opts.WriteToken = environment.Get(envToken, "")
	opts.ReadToken = environment.Get(envReadToken, "")
	// With a write token set, anonymous requests are refused unless compatibility is asked for.
	if opts.Compat, err = parsed.Bool(envCompat, opts.WriteToken == ""); err != nil {
		return nil, err
	}
	maxFileBytes, err := parsed.Int(envMaxFileBytes, 0)
	if err != nil {
		return nil, err
	}
	maxIndexBytes, err := parsed.Int(envMaxIndexBytes, 0)
	if err != nil {
		return nil, err
	}
	opts.MaxFileBytes, opts.MaxIndexBytes = int64(maxFileBytes), int64(maxIndexBytes)
	return cfg, nil
}

// checkFilesOutsideData refuses a file directory that is the data directory or holds it: its
// files are downloadable and uploadable by name, and kb.db must be neither.
func checkFilesOutsideData(files, dataDir string) error {
	absFiles, err := filepath.Abs(files)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", envFiles, files, err)
	}
	absData, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", envDataDir, dataDir, err)
	}
	rel, err := filepath.Rel(absFiles, absData)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("the file directory %s=%q is or contains the data directory %s=%q: kb.db would be served as a file; use a directory beside or below it", envFiles, files, envDataDir, dataDir)
	}
	return nil
}

// bindAddress accepts host:port, optionally as an http:// URL as upstream's variable is written.
func bindAddress(raw string) (string, error) {
	address := strings.TrimSuffix(strings.TrimPrefix(raw, "http://"), "/")
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", fmt.Errorf("listen address %s=%q: want host:port: %w", envBind, raw, err)
	}
	return net.JoinHostPort(host, port), nil
}

// s3Credentials reads upstream's S3 variables: S3_ENDPOINT_URL is a URL (http:// or https://).
func s3Credentials(environment *env.Context) (*storage.Credentials, error) {
	raw := environment.Get(envS3Endpoint, "")
	endpoint, err := url.Parse(raw)
	if raw == "" || err != nil || (endpoint.Scheme != "http" && endpoint.Scheme != "https") || endpoint.Host == "" {
		return nil, fmt.Errorf("files on S3 need %s as http(s)://host[:port], got %q", envS3Endpoint, raw)
	}
	creds := &storage.Credentials{Endpoint: endpoint.Host, UseHTTPS: endpoint.Scheme == "https",
		AccessKeyID: environment.Get(envAccessKeyID, ""), SecretAccessKey: environment.Get(envSecretKey, "")}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return nil, fmt.Errorf("files on S3 need %s and %s", envAccessKeyID, envSecretKey)
	}
	return creds, nil
}

// run serves until ctx ends. ready, when set, receives the listen address.
func run(ctx context.Context, args []string, lookup env.Lookup, ready chan<- string) error {
	cfg, err := parseConfig(args, env.New(lookup))
	if err != nil {
		return fmt.Errorf("configuring the knowledge base: %w", err)
	}
	logger := klog.FromContext(ctx)
	var files kb.FileStore
	if cfg.s3 != nil {
		client, err := storage.New("/", cfg.s3)
		if err != nil {
			return err
		}
		if files, err = kb.NewS3Store(client, cfg.files); err != nil {
			return err
		}
	} else {
		dirStore, err := kb.NewDirStore(cfg.files)
		if err != nil {
			return err
		}
		defer func() { _ = dirStore.Close() }() // read-only handle on the directory
		files = dirStore
	}
	store, err := kb.OpenStore(cfg.dataDir, files)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error(err, "Closing the database")
		}
	}()
	// Uploads a killed process was spooling are garbage: start with an empty scratch directory.
	scratch := filepath.Join(cfg.dataDir, "scratch")
	if err := os.RemoveAll(scratch); err != nil {
		return fmt.Errorf("emptying the scratch directory: %w", err)
	}
	if err := os.MkdirAll(scratch, 0o750); err != nil {
		return fmt.Errorf("creating the scratch directory: %w", err)
	}
	opts := cfg.options
	opts.Store, opts.ScratchDir, opts.Logger = store, scratch, logger
	server, err := kb.NewServer(opts)
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", cfg.bindAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.bindAddr, err)
	}
	_, indexFile := store.Index()
	logger.Info("Knowledge base listening", "address", listener.Addr().String(), "dataDir", cfg.dataDir, "files", files.String(),
		"index", indexFile, "writeToken", opts.WriteToken != "", "readToken", opts.ReadToken != "", "compat", opts.Compat)
	if ready != nil {
		ready <- listener.Addr().String()
	}
	// The handler sets each request's read deadline from its route's size limit (kb.Server);
	// IdleTimeout closes kept-alive connections nobody uses.
	httpServer := &http.Server{Handler: server, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(listener) }()
	select {
	case <-ctx.Done():
		logger.Info("Stopping on signal")
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGracePeriod)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting the HTTP server down: %w", err)
	}
	return nil
}
