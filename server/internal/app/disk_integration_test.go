package app

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/testbed"
)

func fillTo(t *testing.T, path string, keep uint64) { require.NoError(t, testbed.FillDisk(path, keep)) }

func healthz(t *testing.T, s *Server) (int, string) {
	resp, err := http.Get("http://" + s.HTTPAddr() + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var diskRefused = regexp.MustCompile(`shelfsync_ingest_rejected_total\{reason="disk_full"\} (\d+)`)

func refusedForDisk(t *testing.T, s *Server) int {
	m := diskRefused.FindStringSubmatch(metricsText(t, s))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestIntegrationServerDiskFull: on a 400 MiB tmpfs the server applies and
// acknowledges batches until its data disk drops below the reserve; then
// it applies and acknowledges nothing, says why (/healthz, metrics), and
// does not crash even when the disk is completely full (Badger's mapped
// files would SIGBUS); when space returns, the gateway's resent batch is
// applied and acknowledged with no restart.
func TestIntegrationServerDiskFull(t *testing.T) {
	disk := testbed.TmpfsDir(t, "400m")
	cfg := config.Config{DataDir: filepath.Join(disk, "data"), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Root: protocol.DefaultRoot,
		Workers: 1, LogLevel: "info", LogFormat: "text", Shutdown: time.Second,
		Bounds: config.Bounds{DiskReserve: 160 << 20, DiskLow: 200 << 20}}
	s := startWith(t, cfg)
	gw := newFakeGateway(t, s.MQTTAddr(), "W1", "g1")
	require.Equal(t, uint64(3), gw.sendBatch(1, 3, 1).WM)

	filler := filepath.Join(disk, "filler")
	fillTo(t, filler, 150<<20)
	code, body := healthz(t, s)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "data disk full")
	require.Contains(t, metricsText(t, s), "shelfsync_server_disk_full 1")

	b := &protocol.OpBatch{Header: protocol.Header{WH: "W1", GW: "g1"}, First: 4, Last: 6}
	for seq := uint64(4); seq <= 6; seq++ {
		b.Ops = append(b.Ops, protocol.Op{Seq: seq, HLC: protocol.MakeHLC(int64(seq), 0), Kind: protocol.OpReceive, Location: "L", SKU: "sku1", Qty: 1})
	}
	raw, err := protocol.Encode(b)
	require.NoError(t, err)
	gw.send(raw)
	waitFor(t, 10*time.Second, "the batch refused for the disk", func() bool { return refusedForDisk(t, s) >= 1 })

	fillTo(t, filler, 0) // completely full now
	for i := 0; i < 3; i++ {
		gw.send(raw)
	}
	waitFor(t, 10*time.Second, "resends refused too", func() bool { return refusedForDisk(t, s) >= 4 })
	code, _ = healthz(t, s)
	require.Equal(t, http.StatusServiceUnavailable, code, "still serving: no crash")
	gw.mu.Lock()
	for _, a := range gw.acks {
		require.Less(t, a.WM, uint64(4), "nothing of the refused batch was acknowledged")
	}
	gw.mu.Unlock()
	require.Equal(t, int64(3), stock(t, s, "W1")["L/sku1"])

	require.NoError(t, os.Remove(filler))
	var a *protocol.Ack
	waitFor(t, 20*time.Second, "the resent batch applied", func() bool {
		a = gw.waitAck(gw.send(raw))
		return a.WM == 6
	})
	require.Equal(t, int64(6), stock(t, s, "W1")["L/sku1"])
	code, _ = healthz(t, s)
	require.Equal(t, http.StatusOK, code)
}
