package screen_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/agent/internal/app"
	"github.com/shelfsync/shelfsync/agent/internal/config"
	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/flagconf"
	"github.com/shelfsync/shelfsync/protocol"
)

// chromium is the browser: SHELFSYNC_TEST_CHROMIUM, else Debian's.
func chromium() string {
	if p := os.Getenv("SHELFSYNC_TEST_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// startAgent runs a real agent in-process with one scanner that is not
// plugged in (scans are fed through the device manager) and no reachable
// broker, and master data as the server would have sent it.
func startAgent(t *testing.T) (*app.Agent, string) {
	t.Helper()
	var cfg config.Config
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	cfg.Register(fs)
	require.NoError(t, flagconf.Load(fs, []string{
		"--warehouse", "wh1", "--gateway", "dock1", "--data", filepath.Join(t.TempDir(), "agent"),
		"--broker", "tcp://127.0.0.1:1", "--http", "127.0.0.1:0", "--device", "s1=barcode:" + filepath.Join(t.TempDir(), "absent-tty"),
	}, "config"))
	a, err := app.New(cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, a.Store().ApplyDownItems(store.Down{
		Items: []protocol.Item{{SKU: "MILK", GTINs: []string{"04012345678901"}, Velocity: protocol.VelocityFast}},
		Locations: []protocol.Location{
			{Code: "RECEIVING", Type: protocol.LocDock}, {Code: "A-01", Type: protocol.LocPick, Rank: 1}, {Code: "B-01", Type: protocol.LocStorage, Rank: 4},
		},
		POs: []protocol.PurchaseOrder{{ID: "P1", Dock: "RECEIVING", Lines: []protocol.POLine{{Line: 1, SKU: "MILK", Qty: 4}}}},
	}, 0, 1))
	return a, "http://" + a.HTTPAddr()
}

func scan(t *testing.T, a *app.Agent, texts ...string) {
	t.Helper()
	for _, s := range texts {
		_, err := a.Devices().Scan(context.Background(), "s1", s)
		require.NoError(t, err, s)
	}
}

// TestIntegrationGatewayScreen drives a gateway through a receipt and a
// put-away while a real headless Chromium shows /screen/s1, and checks
// what the tablet shows: the session, the expected next scan, the put-away
// suggestion, the last scans with their verdicts and the errors, updating
// live as scans come in.
func TestIntegrationGatewayScreen(t *testing.T) {
	if _, err := os.Stat(chromium()); err != nil {
		if os.Getenv("SHELFSYNC_INTEGRATION") != "" {
			t.Fatalf("SHELFSYNC_INTEGRATION is set but %v (deploy/dev/services.sh installs chromium)", err)
		}
		t.Skip("needs " + chromium() + " (make test-integration installs it)")
	}
	a, base := startAgent(t)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 5*time.Minute) // generous: a slow machine is slower, not red
	defer cancel()

	// The page re-renders every 500 ms, replacing its nodes: a node found
	// by one DevTools call can be gone by the next ("No node with given id
	// found"), so the page is read in one JavaScript evaluation each time.
	read := func(sel string) (string, bool) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(e => e ? e.textContent : "\x00")(document.querySelector(`+jsString(sel)+`))`))
		return v, err == nil && v != "\x00"
	}
	text := func(sel string) string {
		t.Helper()
		var got string
		ok := false
		require.NoError(t, testWait(ctx, func() bool { got, ok = read(sel); return ok }), "%s never appeared", sel)
		return got
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
		require.NoError(t, err)
		return n
	}
	// waitText polls the page (it re-renders every 500 ms) until the first
	// element matching sel contains want.
	waitText := func(sel, want string) {
		t.Helper()
		var got string
		if err := testWait(ctx, func() bool { v, ok := read(sel); got = v; return ok && strings.Contains(v, want) }); err != nil {
			t.Fatalf("%s: want %q, have %q (%v)", sel, want, got, err)
		}
	}

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/screen/s1")))
	waitText("#dev-s1 .session", "no session")
	require.Contains(t, text("#dev-s1 .expect"), "a CMD: label")
	require.Contains(t, text("#uplink"), "offline", "no broker: the page says scans are kept")

	// Receiving against P1: the expected scan and the PO progress follow.
	scan(t, a, "OP:alice", "CMD:RECEIVE", "PO:P1", "QTY:3", "4012345678901")
	waitText("#dev-s1 .session", "RECEIVE")
	waitText("#dev-s1 .expect", "item of PO P1")
	waitText("#dev-s1 .docs", "PO P1")
	waitText("#pos", "MILK 3/4")
	waitText("#dev-s1 .scans tr.verdict-good", "received 3 × MILK")

	// A bad scan shows as an error with its reason, at the top of the list.
	scan(t, a, "4012345678902")
	waitText("#dev-s1 .error", "check digit")
	waitText("#dev-s1 .scans tr.verdict-bad", "4012345678902")

	// Closing the receipt short warns; put-away then shows the suggestion.
	scan(t, a, "CMD:DONE")
	waitText("#dev-s1 .scans tr.verdict-warn", "closed short")
	waitText("#notices", "po-close")
	scan(t, a, "CMD:PUTAWAY", "QTY:3", "4012345678901")
	waitText("#dev-s1 .suggest", "Put away in A-01")
	waitText("#dev-s1 .expect", "suggested A-01")
	scan(t, a, "LOC:A-01", "CMD:DONE")
	waitText("#dev-s1 .session", "no session")
	require.Zero(t, count("#dev-s1 .suggest"), "the suggestion goes once the item is put away")
	waitText("#dev-s1 .scans", "1 item line(s) moved to A-01")

	// The all-devices page shows the same device.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/screen")))
	waitText("#dev-s1 .meta", "operator alice")
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// testWait polls cond every 100 ms until it holds or ctx ends.
func testWait(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
