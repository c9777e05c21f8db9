package processnode

import (
	"fmt"

	"github.com/go-logr/logr"
	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
)

// vkLogger routes virtual-kubelet's logging into the caller's contextual logger: without it the
// library logs to a no-op logger (its default), and its errors — failed status updates, failed
// deletes — would vanish from test output.
type vkLogger struct {
	logger logr.Logger
}

var _ vklog.Logger = vkLogger{}

// virtual-kubelet's "info" messages are per-pod chatter ("Created pod in provider"), so they map to
// V(2) like our own transitions, and its debug messages to V(4) like our per-sync messages.
func (l vkLogger) Debug(args ...any) { l.logger.V(4).Info(fmt.Sprint(args...)) }
func (l vkLogger) Debugf(format string, args ...any) {
	l.logger.V(4).Info(fmt.Sprintf(format, args...))
}
func (l vkLogger) Info(args ...any)                 { l.logger.V(2).Info(fmt.Sprint(args...)) }
func (l vkLogger) Infof(format string, args ...any) { l.logger.V(2).Info(fmt.Sprintf(format, args...)) }
func (l vkLogger) Warn(args ...any)                 { l.logger.Info(fmt.Sprint(args...)) }
func (l vkLogger) Warnf(format string, args ...any) { l.logger.Info(fmt.Sprintf(format, args...)) }
func (l vkLogger) Error(args ...any)                { l.logger.Error(nil, fmt.Sprint(args...)) }
func (l vkLogger) Errorf(format string, args ...any) {
	l.logger.Error(nil, fmt.Sprintf(format, args...))
}

// Fatal is never called by the node and pod controllers; exiting the test binary from a library
// would hide the failure, so it logs as an error instead.
func (l vkLogger) Fatal(args ...any)                 { l.Error(args...) }
func (l vkLogger) Fatalf(format string, args ...any) { l.Errorf(format, args...) }

func (l vkLogger) WithField(key string, value any) vklog.Logger {
	return vkLogger{logger: l.logger.WithValues(key, value)}
}

func (l vkLogger) WithFields(fields vklog.Fields) vklog.Logger {
	kv := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		kv = append(kv, k, v)
	}
	return vkLogger{logger: l.logger.WithValues(kv...)}
}

// WithError attaches the error as a value: logr has no "logger with error" and the level is only
// known when the message is logged.
func (l vkLogger) WithError(err error) vklog.Logger {
	return vkLogger{logger: l.logger.WithValues("err", err)}
}
