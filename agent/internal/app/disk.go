package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shelfsync/shelfsync/agent/internal/config"
	"github.com/shelfsync/shelfsync/agent/internal/devices"
	"github.com/shelfsync/shelfsync/agent/internal/screen"
	"github.com/shelfsync/shelfsync/agent/internal/store"
)

// WaitForDisk holds the agent's start while its data disk is below the
// reserve (--disk-reserve): opening the store writes (Badger's lock file,
// a new memtable log), which fails on a full disk — or, through a mapped
// file, kills the process with SIGBUS — so a restart would crash-loop.
// Meanwhile the agent logs why and answers on its HTTP address: /healthz
// is 503 with the reason, /api/v1/status has "starting" and the disk state
// ("full": true) and the devices, /metrics has shelfsync_agent_disk_full 1
// and shelfsync_agent_scans_total. Barcode scanners are read meanwhile:
// every scan gets a bad beep and "disk full" (on the gateway screen,
// /screen, with the device, and in the status API), and nothing is
// recorded (devices.NewRefusing). It returns once space is back (checked
// every second) and the scanners are released for the agent to open, or
// with ctx's error.
func WaitForDisk(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	reserve := uint64(max(cfg.DiskReserve, 0))
	if reserve == 0 {
		reserve = store.DefaultDiskReserve
	}
	state := func() store.DiskState {
		var st syscall.Statfs_t
		dir := cfg.DataDir
		if _, err := os.Stat(dir); err != nil {
			dir = filepath.Dir(dir) // not created yet
		}
		if err := syscall.Statfs(dir, &st); err != nil {
			return store.DiskState{ReserveBytes: reserve}
		}
		free := st.Bavail * uint64(st.Bsize)
		return store.DiskState{FreeBytes: free, ReserveBytes: reserve, Full: free < reserve, Low: free < uint64(max(cfg.DiskLow, 0))}
	}
	if !state().Full {
		return nil
	}
	log.Error("data disk below its reserve at start: the store opens when space is freed (scans are refused with a bad beep meanwhile)",
		"dir", cfg.DataDir, "free_bytes", state().FreeBytes, "reserve_bytes", reserve)
	var specs []devices.Spec
	for _, d := range cfg.Devices {
		sp, err := devices.ParseSpec(d)
		if err != nil {
			return err
		}
		specs = append(specs, sp)
	}
	scans := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_agent_scans_total", Help: "Scans by verdict (good, bad, warn)."}, []string{"verdict"})
	refuse, err := devices.NewRefusing(devices.Config{Specs: specs, Logger: log.With("component", "devices"),
		OnScan: func(e devices.ScanLog) { scans.WithLabelValues(string(e.Verdict)).Inc() }},
		"disk full: not saved — the gateway's data disk has no room; scan again once space is freed")
	if err != nil {
		return err
	}
	devCtx, stopDevices := context.WithCancel(ctx)
	devDone := make(chan struct{})
	go func() { defer close(devDone); refuse.Run(devCtx) }()
	defer func() { stopDevices(); <-devDone }() // the agent opens the devices next
	if cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("http listen on %s: %w (pick another with --http)", cfg.HTTPAddr, err)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(scans)
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_disk_full", Help: "1 while the data disk is below --disk-reserve."},
			func() float64 {
				if state().Full {
					return 1
				}
				return 0
			}))
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			st := state()
			http.Error(w, fmt.Sprintf("disk full: the store opens when space is freed (%d bytes free, %d kept in reserve; --disk-reserve)", st.FreeBytes, st.ReserveBytes),
				http.StatusServiceUnavailable)
		})
		mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"starting": "waiting for free space on the data disk", "disk": state(), "devices": refuse.Devices()})
		})
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		sh := screen.Handler(screen.Source{Warehouse: cfg.Warehouse, Gateway: cfg.Gateway, Devices: refuse.Devices, Disk: state,
			Connected: func() (bool, string) { return false, "not started: the data disk is full" }})
		mux.Handle("GET /screen", sh)
		mux.Handle("GET /screen/", sh)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for state().Full {
		select {
		case <-ctx.Done():
			return errors.Join(errors.New("stopped while waiting for free space on the data disk"), ctx.Err())
		case <-tick.C:
		}
	}
	log.Info("data disk has room again: opening the store", "free_bytes", state().FreeBytes)
	return nil
}
