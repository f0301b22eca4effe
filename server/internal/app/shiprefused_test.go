package app

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/config"
)

// TestShipRefusedRaisedOncePerNotice: a ship notice the server refuses
// (an order it does not know) raises one ship-refused alert, however
// often it is taken — twice at once (as two replicas would), again after
// the server restarts on the same data (a crash before the notice was
// marked taken) — while another notice for the same order (another
// parcel) raises its own.
func TestShipRefusedRaisedOncePerNotice(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Root: protocol.DefaultRoot, Workers: 2, LogLevel: "info", LogFormat: "text", Shutdown: time.Second}
	start := func() (*Server, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(ctx) }()
		stop := sync.OnceFunc(func() { cancel(); <-done })
		t.Cleanup(stop)
		return s, stop
	}
	refused := func(s *Server) []alerts.Alert {
		as, _, err := s.inv.alerts.List(context.Background(), alerts.Query{Kind: alerts.KindShipRefused})
		require.NoError(t, err)
		return as
	}
	n := protocol.Notice{ID: "gw1-n-7", Kind: protocol.NoticeShip, Ref: "ORD-NOPE", Device: "pack-1", SSCC: "106141412345678908"}

	s, stop := start()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.inv.shipScanned(context.Background(), "wh1", "gw1", n)
			require.NoError(t, err)
			require.Contains(t, res, shipRefused)
		}()
	}
	wg.Wait()
	require.Len(t, refused(s), 1, "the same notice taken twice at once raises one alert")
	stop()

	s, _ = start()
	res, err := s.inv.shipScanned(context.Background(), "wh1", "gw1", n)
	require.NoError(t, err)
	require.Contains(t, res, shipRefused)
	require.Len(t, refused(s), 1, "the notice taken again after a restart raises nothing more")

	other := n
	other.ID = "gw1-n-8"
	_, err = s.inv.shipScanned(context.Background(), "wh1", "gw1", other)
	require.NoError(t, err)
	as := refused(s)
	require.Len(t, as, 2, "another notice (another parcel) of the order gets its own alert")
	for _, a := range as {
		require.Contains(t, a.Message, "ORD-NOPE")
		require.Equal(t, "gw1", a.Gateway)
	}
}
