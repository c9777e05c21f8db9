// Command pedestrians-search is the user worker of the pedestrian example's ObjectSearchService:
// POST /object_search/search with photos of a person (a multiedge.TargetRequest) answers where
// the service's cameras saw them (a multiedge.SearchResponse, best match first). It embeds the
// photos itself and asks the service's reid workers (<SERVICE_NAME>-reidworker.<NAMESPACE>:9378,
// or GALLERY_URL, else EDGEMESH_URL). It listens on POD_IP:9379 (USER_BIND_PORT).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/pipeline"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, env.FromOS()); err != nil {
		klog.ErrorS(err, "Search worker failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, vars *env.Context) error {
	cfg, err := multiedge.ConfigFromEnv(vars)
	if err != nil {
		return err
	}
	if cfg.Token == "" && !cfg.AllowAnonymous {
		return fmt.Errorf("no pipeline token (%s)", multiedge.EnvToken)
	}
	port, err := vars.Port("USER_BIND_PORT", 9379)
	if err != nil {
		return err
	}
	gallery := vars.Get("GALLERY_URL", vars.Get("EDGEMESH_URL", ""))
	if gallery == "" {
		gallery = fmt.Sprintf("%s-reidworker.%s:9378", vars.Get(env.ServiceName, ""), vars.Get(env.Namespace, "default"))
	}
	if !strings.Contains(gallery, "://") {
		gallery = "http://" + gallery
	}
	reid := multiedge.NewClient(gallery, cfg.Token, nil)
	admission := workerauth.Admission{Token: cfg.Token, AllowAnonymous: cfg.AllowAnonymous}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pipeline.PathSearch, func(w http.ResponseWriter, r *http.Request) {
		if decision := admission.Admit(r.Header); decision.Status != 0 {
			writeJSON(w, decision.Status, multiedge.ErrorResponse{Error: decision.Reason})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, multiedge.DefaultMaxBodyBytes))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, multiedge.ErrorResponse{Error: err.Error()})
			return
		}
		var req multiedge.TargetRequest
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, multiedge.ErrorResponse{Error: fmt.Sprintf("request body is not a target {\"target\",\"crops\"}: %v", err)})
			return
		}
		if err := req.Validate(); err != nil {
			writeJSON(w, http.StatusBadRequest, multiedge.ErrorResponse{Error: err.Error()})
			return
		}
		features := make([][]float64, len(req.Crops))
		for i := range req.Crops {
			features[i] = multiedge.ExtractFeature(&req.Crops[i])
		}
		results, err := reid.Search(r.Context(), features, 3)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, multiedge.ErrorResponse{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, multiedge.SearchResponse{Results: results})
	})
	addr := net.JoinHostPort(cfg.BindHost, strconv.Itoa(port))
	listener, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	server := multiedge.NewHTTPServer(ctx, mux)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown) // the process is exiting
	}()
	klog.FromContext(ctx).Info("Serving object search", "address", addr, "gallery", gallery)
	if err := server.Serve(listener); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, value any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(value) // the header is sent; the client may be gone
}
