package messagelayer

import (
	"context"
	"errors"
	"net/http"
	"strings"

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
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		logger.Info("Websocket upgrade failed", "node", node, "err", err)
		return // the upgrader has answered the client
	}
	s.hub.serve(s.ctx, node, r.Header.Get(channel.StoreIDHeader), ws)
}

func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}
