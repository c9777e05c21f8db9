package messagelayer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
)

// NodeNameHeader is the header upstream's LC sends; GM checks it against the token's node.
const NodeNameHeader = "Node-Name"

// Server accepts LC connections. Mount it on an HTTPS server.
type Server struct {
	hub      *Hub
	auth     Authenticator
	upgrader websocket.Upgrader
	ctx      context.Context
}

// NewServer returns a server that authenticates with auth and serves hub. ctx bounds every
// connection's life and carries the logger.
func NewServer(ctx context.Context, hub *Hub, auth Authenticator) *Server {
	return &Server{
		hub:  hub,
		auth: auth,
		ctx:  ctx,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			// LCs send no Origin; a browser always does, and has no business here.
			CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "" },
		},
	}
}

// ServeHTTP authenticates the LC, binds the connection to its node and runs the protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(s.ctx).WithValues("remote", r.RemoteAddr)
	token, ok := bearerToken(r)
	if !ok {
		s.hub.metrics.AuthFailures.WithLabelValues("no_token").Inc()
		logger.Info("Refused an LC connection without a bearer token")
		http.Error(w, "a bearer token is required", http.StatusUnauthorized)
		return
	}
	node, err := s.auth.Authenticate(r.Context(), token)
	if err != nil {
		reason, status := "invalid_token", http.StatusUnauthorized
		if !errors.Is(err, ErrUnauthenticated) {
			reason, status = "review_failed", http.StatusServiceUnavailable
		}
		s.hub.metrics.AuthFailures.WithLabelValues(reason).Inc()
		logger.Info("Refused an LC connection", "err", err)
		http.Error(w, "authentication failed", status)
		return
	}
	if claimed := r.Header.Get(NodeNameHeader); claimed != "" && claimed != node {
		s.hub.metrics.AuthFailures.WithLabelValues("wrong_node").Inc()
		logger.Info("Refused an LC claiming another node", "claimed", claimed, "node", node)
		http.Error(w, "the token is bound to another node", http.StatusForbidden)
		return
	}
	storeID := r.Header.Get(channel.StoreIDHeader)
	if err := validStoreID(storeID); err != nil {
		s.hub.metrics.AuthFailures.WithLabelValues("bad_store_id").Inc()
		logger.Info("Refused an LC connection with a malformed store identity", "node", node, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ws, err := s.upgrader.Upgrade(batchingHijacker{w}, r, nil)
	if err != nil {
		logger.Info("Websocket upgrade failed", "node", node, "err", err)
		return // the upgrader has answered the client
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go s.watchCredential(klog.NewContext(ctx, logger.WithValues("node", node)), cancel, ws, token, node)
	s.hub.serve(ctx, node, storeID, ws)
}

// maxStoreIDLen bounds the store identity GM keeps per node (and writes into the report marks
// ConfigMap). The LC sends 32 hex digits; the bound leaves room without letting one LC grow
// every node's shared state.
const maxStoreIDLen = 64

// validStoreID accepts what the LC sends: up to 64 of [0-9A-Za-z-]. An absent header is
// accepted as an LC without a store identity.
func validStoreID(id string) error {
	if len(id) > maxStoreIDLen {
		return fmt.Errorf("the %s header is %d characters long; at most %d are allowed", channel.StoreIDHeader, len(id), maxStoreIDLen)
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-') {
			return fmt.Errorf("the %s header may hold only letters, digits and '-', not %q", channel.StoreIDHeader, r)
		}
	}
	return nil
}

// Rechecker is an Authenticator that may answer from a cache and can also review a token
// afresh: the periodic review of a connected LC's token must reach the API server.
type Rechecker interface {
	Recheck(ctx context.Context, token string) (string, error)
}

// reviewAfresh reviews token afresh, bypassing auth's cache when it has one.
func reviewAfresh(ctx context.Context, auth Authenticator, token string) (string, error) {
	if r, ok := auth.(Rechecker); ok {
		return r.Recheck(ctx, token)
	}
	return auth.Authenticate(ctx, token)
}

// Reasons a connection is closed because of its credential.
const (
	closeTokenExpired = "token_expired"
	closeTokenRefused = "token_refused"
	closeNodeChanged  = "node_changed"
)

// watchCredential ends the connection when the token it was opened with expires, or when a
// review of the token, repeated every CredentialRecheck, refuses it (the LC's pod is gone, its
// service account deleted) or names another node. The LC then reconnects with its current token.
// A review that fails to decide keeps the connection and is tried again at the next check.
func (s *Server) watchCredential(ctx context.Context, cancel context.CancelFunc, ws wsConn, token, node string) {
	logger := klog.FromContext(ctx)
	expires := TokenExpiry(token)
	for {
		// Jittered to [3/4, 5/4] of the period: LCs that connected together after a failover
		// do not all come back for review in the same second.
		recheck := s.hub.opts.CredentialRecheck
		wait, expiring := recheck*3/4+rand.N(recheck/2+1), false
		if !expires.IsZero() {
			if untilExpiry := expires.Sub(s.hub.now()); untilExpiry <= wait {
				wait, expiring = untilExpiry, true
			}
		}
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		reason := closeTokenExpired
		if !expiring {
			current, err := reviewAfresh(ctx, s.auth, token)
			switch {
			case err == nil && current == node:
				continue
			case err == nil:
				reason = closeNodeChanged
			case errors.Is(err, ErrUnauthenticated):
				reason = closeTokenRefused
				logger.Info("The connection's token is no longer accepted", "err", err)
			default:
				if ctx.Err() != nil {
					return
				}
				logger.Info("Could not review the connection's token again; keeping the connection", "err", err)
				continue
			}
		}
		s.hub.metrics.CredentialCloses.WithLabelValues(reason).Inc()
		logger.Info("Closing the LC connection; the LC reconnects with its current token", "reason", reason)
		// Tell the LC why before the connection goes; a failure changes nothing, it is closing.
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "credential "+strings.ReplaceAll(reason, "_", " ")),
			s.hub.now().Add(s.hub.opts.WriteTimeout))
		cancel()
		return
	}
}

func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// batchingHijacker hands the websocket a channel.BatchConn, so the connection's writer can send
// the frames it has ready in one write.
type batchingHijacker struct{ http.ResponseWriter }

func (h batchingHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return channel.NewBatchConn(conn), brw, nil
}
