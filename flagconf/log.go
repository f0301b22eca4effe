package flagconf

import (
	"fmt"
	"io"
	"log/slog"
)

// CheckLog validates the --log-level and --log-format values both daemons
// take, naming the flag in each error.
func CheckLog(level, format string) []error {
	var errs []error
	switch level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level: %q must be debug, info, warn or error", level))
	}
	if format != "text" && format != "json" {
		errs = append(errs, fmt.Errorf("log-format: %q must be text or json", format))
	}
	return errs
}

// NewLogger returns the daemon's logger: slog's text or JSON handler on w
// at level (values CheckLog accepts; anything else logs at info).
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
