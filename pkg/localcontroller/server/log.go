package server

import (
	"fmt"
	"log"
	"strings"

	"k8s.io/klog/v2"
)

// newStdLogger routes net/http's own messages (malformed requests, panics in handlers) to the
// contextual logger instead of the process's standard error.
func newStdLogger(logger klog.Logger) *log.Logger {
	return log.New(logWriter{logger: logger}, "", 0)
}

type logWriter struct{ logger klog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.Info("HTTP server", "message", strings.TrimSpace(string(p)))
	return len(p), nil
}

// klogErrorLog receives promhttp's errors (metrics that could not be gathered or encoded). New
// has no context to take a logger from, so it logs to klog's global logger.
type klogErrorLog struct{}

func (klogErrorLog) Println(v ...any) {
	klog.Background().Error(nil, "Serving metrics failed", "details", strings.TrimSpace(fmt.Sprintln(v...)))
}
