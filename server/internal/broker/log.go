package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// natsLog hands nats-server's log lines to slog and notes the ones the
// broker's health and metrics depend on: accept errors (descriptors
// exhausted), ACL denials, and a fatal start error.
type natsLog struct {
	log *slog.Logger

	acceptErrors  atomic.Int64
	lastAcceptErr atomic.Int64 // unix nanoseconds

	// denied, when set, is told of each permission violation: action
	// "publish" or "subscribe" and the connection's name (an MQTT
	// client's client id).
	denied func(action, user string)

	mu       sync.Mutex
	fatalErr error
}

func newNATSLog(log *slog.Logger) *natsLog { return &natsLog{log: log} }

// Noticef: nats-server's notices are its start-up banner and routine
// events; they are debug detail here.
func (l *natsLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

func (l *natsLog) Warnf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }

func (l *natsLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.fatalErr == nil {
		l.fatalErr = errors.New(msg)
	}
	l.mu.Unlock()
	l.log.Error(msg)
}

func (l *natsLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	switch {
	case strings.Contains(msg, "Accept Error"), strings.Contains(msg, "Accept error"):
		l.acceptErrors.Add(1)
		l.lastAcceptErr.Store(time.Now().UnixNano())
		// One line per error would flood the log while descriptors are
		// exhausted: nats-server retries every few milliseconds to 1 s.
		if n := l.acceptErrors.Load(); n&(n-1) != 0 {
			return
		}
		msg += " (the process may be out of file descriptors: raise LimitNOFILE / ulimit -n, or lower --mqtt-max-conns)"
	case strings.Contains(msg, "Publish Violation"), strings.Contains(msg, "Subscription Violation"):
		action := "publish"
		if strings.Contains(msg, "Subscription Violation") {
			action = "subscribe"
		}
		if l.denied != nil {
			l.denied(action, quotedUser(msg))
		}
		l.log.Warn("MQTT topic denied by the ACL: " + msg)
		return
	}
	l.log.Error(msg)
}

func (l *natsLog) Debugf(format string, v ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, v...))
	}
}

// quotedUser returns the quoted name in a client's log line
// (`ADDR - mid:N - "CLIENT ID" - text`), or "".
func quotedUser(msg string) string {
	_, rest, ok := strings.Cut(msg, ` - "`)
	if !ok {
		return ""
	}
	user, _, ok := strings.Cut(rest, `" - `)
	if !ok {
		return ""
	}
	return user
}

func (l *natsLog) Tracef(string, ...any) {}

func (l *natsLog) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalErr
}
