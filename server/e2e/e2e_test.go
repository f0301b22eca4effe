package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const gtin = "04012345678901" // EAN-13 4012345678901 normalised to GTIN-14

var shift = []string{
	"CMD:RECEIVE", "4012345678901", "4012345678901", "QTY:5", "4012345678901", "CMD:DONE",
	"CMD:COUNT", "LOC:A-01", "SKU:WIDGET", "SKU:WIDGET", "CMD:DONE",
}

func TestScansThroughPtyReachServerStock(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	g := c.newGateway("wh1", "dock1")
	waitFor(t, 15*time.Second, "the server's ack announcing ops-deflate", func() bool { return uplinkOpsDeflate(g) })
	g.scan(shift...)
	b := g.waitBeeps(len(shift))
	require.Equal(t, map[string]int{"good": len(shift)}, b)
	want := map[string]int64{"RECEIVING/" + gtin: 7, "A-01/WIDGET": 2}
	waitFor(t, 15*time.Second, "server stock", func() bool { return equal(stock(t, "http://"+c.httpAddr, "wh1"), want) })
	require.Equal(t, want, stock(t, "http://"+g.HTTP, "wh1"), "agent view")
	waitFor(t, 10*time.Second, "outbox empty", func() bool { return g.status().OutboxDepth == 0 })
	require.Positive(t, serverMetric(t, "http://"+c.httpAddr, `shelfsync_ingest_wire_batches_total{form="ops-deflate"}`),
		"the ops travelled as ops-deflate")
}

func TestInvalidScanGetsBadBeepAndChangesNothing(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	g := c.newGateway("wh1", "dock1")
	g.scan("CMD:RECEIVE", "4012345678902" /* bad check digit */, "\x01\x02garbage", "4012345678901", "CMD:DONE")
	b := g.waitBeeps(5)
	require.Equal(t, map[string]int{"good": 3, "bad": 2}, b)
	want := map[string]int64{"RECEIVING/" + gtin: 1}
	waitFor(t, 15*time.Second, "server stock", func() bool { return equal(stock(t, "http://"+c.httpAddr, "wh1"), want) })
}

func TestBrokerDownAgentKeepsConfirmingThenConverges(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	g := c.newGateway("wh1", "dock1")
	g.scan("CMD:RECEIVE", "SKU:A")
	g.waitBeeps(2)
	waitFor(t, 10*time.Second, "first op acked", func() bool { return g.status().AckedSeq == 1 })

	c.stopServer(syscall.SIGTERM) // the embedded broker goes with it
	waitFor(t, 10*time.Second, "agent sees broker down", func() bool { return !g.status().Connected })
	for i := 0; i < 20; i++ {
		g.scan("SKU:A")
	}
	b := g.waitBeeps(22)
	require.Equal(t, 22, b["good"], "scans are confirmed while the broker is down")
	st := g.status()
	require.Equal(t, uint64(21), st.LastSeq)
	require.Equal(t, uint64(20), st.OutboxDepth, "the outbox holds what the server has not acked")

	c.startServer()
	waitFor(t, 20*time.Second, "outbox drained", func() bool { return g.status().OutboxDepth == 0 })
	require.Equal(t, map[string]int64{"RECEIVING/A": 21}, stock(t, "http://"+c.httpAddr, "wh1"))
}

func TestKill9AgentLosesNoConfirmedScan(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	g := c.newGateway("wh1", "dock1")
	c.stopServer(syscall.SIGKILL) // nothing gets acked: everything lives only in the agent's outbox
	g.scan("CMD:RECEIVE", "SKU:A", "SKU:A", "SKU:B", "CMD:DONE", "CMD:COUNT", "LOC:BIN-7", "SKU:C")
	g.waitBeeps(8)
	g.Agent().Stop(syscall.SIGKILL) // right after the good beeps

	g.startAgent()
	g.scan("SKU:C", "CMD:DONE") // the open count resumes after the restart
	g.waitBeeps(10)
	require.Equal(t, 10, g.beeps()["good"])
	c.startServer()
	want := map[string]int64{"RECEIVING/A": 2, "RECEIVING/B": 1, "BIN-7/C": 2}
	waitFor(t, 20*time.Second, "server converges", func() bool { return equal(stock(t, "http://"+c.httpAddr, "wh1"), want) })
	waitFor(t, 10*time.Second, "outbox drained", func() bool { return g.status().OutboxDepth == 0 })
}

func equal(a, b map[string]int64) bool {
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
