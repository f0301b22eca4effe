package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/shelfsync/shelfsync/flagconf"
	"github.com/shelfsync/shelfsync/server/internal/app"
	"github.com/shelfsync/shelfsync/server/internal/config"
)

// inProcess runs the server in this process with a CPU profile going to
// path until the returned stop is called (diagnostic mode: the RSS figure
// then includes the simulated gateways).
func inProcess(ctx context.Context, args []string, path string) (func(), error) {
	var cfg config.Config
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.Register(fs)
	if err := flagconf.Load(fs, args, "config"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	srv, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(done) }()
	f, err := os.Create(path)
	if err != nil {
		cancel()
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		cancel()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		cancel()
		<-done
	}, nil
}

// writeHeapProfile writes the in-process heap profile to path (diagnostic
// mode; the heap then includes the simulated gateways).
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("heap").WriteTo(f, 0)
}
