package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSSIScannerThroughAgent: a Zebra SSI scanner (packets, checksums,
// ACKs, BEEP feedback) drives a whole receive session.
func TestSSIScannerThroughAgent(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	g := c.newGatewayWith("wh1", "ssi1", []string{"--framing", "ssi"}, "framing=ssi")
	g.scan("CMD:RECEIVE", "4012345678901", "4012345678902", "SKU:B", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 4, "bad": 1}, g.waitBeeps(5))
	want := map[string]int64{"RECEIVING/" + gtin: 1, "RECEIVING/B": 1}
	waitFor(t, 15*time.Second, "server stock", func() bool { return equal(stock(t, "http://"+c.httpAddr, "wh1"), want) })
}

// TestUnplugAndGarbageLoseNoConfirmedScan: the scanner is unplugged every
// few scans, or spews garbage, or splits its frames; every scan the
// operator heard a good beep for reaches the server, and every committed
// op reaches it exactly once.
func TestUnplugAndGarbageLoseNoConfirmedScan(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	for _, fault := range []string{"unplug", "garbage", "split"} {
		t.Run(fault, func(t *testing.T) {
			c := newCluster(t)
			g := c.newGatewayWith("wh1", "f1", []string{"--fault", fault, "--fault-every", "4"}, "feedback=honeywell")
			g.scan("CMD:RECEIVE")
			g.waitBeeps(1)
			for i := 0; i < 24; i++ {
				// An operator who hears no beep scans again: bytes in flight
				// at an unplug are lost, as on a real cable.
				g.scanUntilBeep(fmt.Sprintf("SKU:U%d", i%3))
			}
			// Wait until the scanner has gone quiet, then compare beeps with stock.
			var b map[string]int
			stable := 0
			waitFor(t, 30*time.Second, "beeps settle", func() bool {
				nb := g.beeps()
				if equalInts(nb, b) {
					stable++
				} else {
					stable = 0
				}
				b = nb
				return stable >= 20
			})
			good := b["good"] - 1 // minus CMD:RECEIVE
			require.GreaterOrEqual(t, good, 24, "every item was eventually confirmed")
			var total int64
			waitFor(t, 15*time.Second, "server has every confirmed scan", func() bool {
				total = 0
				for _, v := range stock(t, "http://"+c.httpAddr, "wh1") {
					total += v
				}
				return total >= int64(good)
			})
			// Every confirmed scan is in the ledger; anything beyond is an op
			// committed whose beep was lost to the unplug — committed ops
			// reach the server exactly once either way.
			st := g.status()
			require.GreaterOrEqual(t, total, int64(good), "no confirmed scan lost")
			waitFor(t, 15*time.Second, "all committed ops applied", func() bool {
				total = 0
				for _, v := range stock(t, "http://"+c.httpAddr, "wh1") {
					total += v
				}
				st = g.status()
				return total == int64(st.LastSeq) && st.OutboxDepth == 0
			})
		})
	}
}

func equalInts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// scanUntilBeep scans text, and again whenever no beep follows within a
// second, as an operator does.
func (g *gateway) scanUntilBeep(text string) {
	total := func() int { b := g.beeps(); return b["good"] + b["bad"] + b["warn"] }
	before := total()
	for try := 0; try < 20; try++ {
		g.scan(text)
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if total() > before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	g.c.t.Fatalf("no beep for %q after 20 tries", text)
}
