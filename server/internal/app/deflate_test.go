package app

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// shiftOps is a slice of a shift at one gateway: receipts, a put-away, a
// pick, an adjustment, a location count and a pick into negative stock, with
// the audit fields a scanner fills in.
func shiftOps(first uint64) []protocol.Op {
	hlc := protocol.MakeHLC(time.Now().UnixMilli(), 0)
	var ops []protocol.Op
	add := func(o protocol.Op) {
		o.Seq, o.HLC = first+uint64(len(ops)), hlc+protocol.HLC(len(ops))
		o.Device, o.Operator = "s1", "ann"
		ops = append(ops, o)
	}
	for i := 0; i < 40; i++ {
		gtin := []string{"4006381333931", "4006381333948", "4006381333955"}[i%3]
		add(protocol.Op{Kind: protocol.OpReceive, Location: "RCV", SKU: "0" + gtin, Lot: "L7", Qty: 2, Raw: []string{gtin}, Refs: &protocol.Refs{PO: "PO-1", POLine: uint32(1 + i%3)}})
	}
	add(protocol.Op{Kind: protocol.OpPutaway, Location: "RCV", To: "A-01", SKU: "04006381333931", Lot: "L7", Qty: 10, Raw: []string{"LOC:A-01"}})
	add(protocol.Op{Kind: protocol.OpPick, Location: "A-01", SKU: "04006381333931", Lot: "L7", Qty: 3, Refs: &protocol.Refs{Order: "SO-9", OrderLine: 1}})
	add(protocol.Op{Kind: protocol.OpAdjust, Location: "RCV", SKU: "04006381333948", Lot: "L7", Qty: -1, Reason: "DAMAGED"})
	add(protocol.Op{Kind: protocol.OpCount, Scope: protocol.ScopeLocation, Location: "A-01", Lines: []protocol.CountLine{{SKU: "04006381333931", Lot: "L7", Qty: 6}}})
	add(protocol.Op{Kind: protocol.OpPick, Location: "B-02", SKU: "04006381333955", Qty: 4})
	return ops
}

// rawOpsDeflate hand-encodes an ops-deflate message around data, as a
// third party would (SPEC.md §5.1), so that tests can send any data.
func rawOpsDeflate(wh, gw string, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xa5, 0x00, 0x01, 0x01, 0x07})
	text := func(s string) { b.WriteByte(0x60 + byte(len(s))); b.WriteString(s) } // len < 24
	b.WriteByte(0x02)
	text(wh)
	b.WriteByte(0x03)
	text(gw)
	b.Write([]byte{0x04, 0x59}) // bytes, 2-byte length
	_ = binary.Write(&b, binary.BigEndian, uint16(len(data)))
	b.Write(data)
	return b.Bytes()
}

// TestServerAcceptsBothBatchForms: the server announces ops-deflate, and
// the same ops sent plain to one warehouse and compressed to another give
// the same ledger, history (audit) and conflicts; a decompression bomb is
// refused with a clear error, counted, and changes nothing.
func TestServerAcceptsBothBatchForms(t *testing.T) {
	s := startServer(t, t.TempDir())
	plain := newFakeGateway(t, s.MQTTAddr(), "wh1", "g1")
	comp := newFakeGateway(t, s.MQTTAddr(), "wh2", "g2") // fake gateways' client IDs are "fake-"+gw

	hello := func(g *fakeGateway) *protocol.Ack {
		raw, err := protocol.Encode(&protocol.Hello{Header: protocol.Header{WH: g.wh, GW: g.gw}, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0)})
		require.NoError(t, err)
		return g.waitAck(g.send(raw))
	}
	require.True(t, hello(plain).Features.Has(protocol.FeatureOpsDeflate), "the hello's ack announces ops-deflate")

	ops := shiftOps(1)
	last := ops[len(ops)-1].Seq
	for _, tc := range []struct {
		g       *fakeGateway
		deflate bool
	}{{plain, false}, {comp, true}} {
		b := &protocol.OpBatch{Header: protocol.Header{WH: tc.g.wh, GW: tc.g.gw}, First: 1, Last: last, Ops: ops, HLC: ops[len(ops)-1].HLC, Deflate: tc.deflate}
		raw, err := protocol.Encode(b)
		require.NoError(t, err)
		a := tc.g.waitAck(tc.g.send(raw))
		require.Empty(t, a.Error)
		require.Equal(t, last, a.WM)
		require.True(t, a.Features.Has(protocol.FeatureOpsDeflate))
	}
	require.Equal(t, stock(t, s, "wh1"), stock(t, s, "wh2"))
	require.NotEmpty(t, stock(t, s, "wh1"))

	ctx := context.Background()
	act := s.st
	for _, k := range [][2]string{{"RCV", "04006381333931"}, {"RCV", "04006381333948"}, {"A-01", "04006381333931"}} {
		h1, err := act.History(ctx, ledger.Key{WH: "wh1", Location: k[0], SKU: k[1], Lot: "L7"})
		require.NoError(t, err)
		h2, err := act.History(ctx, ledger.Key{WH: "wh2", Location: k[0], SKU: k[1], Lot: "L7"})
		require.NoError(t, err)
		require.NotEmpty(t, h1)
		for i := range h2 {
			require.Equal(t, "g2", h2[i].Gateway)
			h2[i].Gateway = "g1"
		}
		require.Equal(t, h1, h2, "history of %v: device, operator, raw scan, refs, hlc and seq as sent", k)
	}
	kinds := func(wh string) []string {
		cs, err := act.Conflicts(ctx, conflicts.Query{Warehouse: wh})
		require.NoError(t, err)
		var out []string
		for _, c := range cs {
			out = append(out, string(c.Kind)+" "+c.Location+" "+c.SKU)
		}
		return out
	}
	require.NotEmpty(t, kinds("wh1"), "the pick into negative stock and the count's variance are conflicts")
	require.ElementsMatch(t, kinds("wh1"), kinds("wh2"))

	// A bomb: 4 MiB of zeros in a few KiB.
	var z bytes.Buffer
	w, err := flate.NewWriter(&z, flate.BestCompression)
	require.NoError(t, err)
	_, err = w.Write(make([]byte, 4<<20))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	before := metric(t, s, "", "shelfsync_ingest_rejected_total", `reason="inflated_too_large"`)
	a := comp.waitAck(comp.send(rawOpsDeflate("wh2", "g2", z.Bytes())))
	require.Contains(t, a.Error, "decompression bomb")
	require.Equal(t, last, a.WM, "nothing applied")
	require.Equal(t, before+1, metric(t, s, "", "shelfsync_ingest_rejected_total", `reason="inflated_too_large"`))
	require.Equal(t, stock(t, s, "wh1"), stock(t, s, "wh2"))
	require.Equal(t, 1.0, metric(t, s, "", "shelfsync_ingest_wire_batches_total", `form="ops-deflate"`))
	require.Equal(t, 1.0, metric(t, s, "", "shelfsync_ingest_wire_batches_total", `form="ops"`))
}

// TestServerWithoutDeflateAnnouncementStillAcceptsIt: with
// --no-ops-deflate (a rolling upgrade) acks announce nothing, so agents
// send plain batches, yet a compressed batch in flight is still applied.
func TestServerWithoutDeflateAnnouncementStillAcceptsIt(t *testing.T) {
	cfg := config.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Root: protocol.DefaultRoot, Workers: 1, LogLevel: "info", LogFormat: "text", Shutdown: time.Second}
	cfg.NoOpsDeflate = true
	s := startWith(t, cfg)

	g := newFakeGateway(t, s.MQTTAddr(), "wh1", "g1")
	a := g.sendBatch(1, 2, 1)
	require.False(t, a.Features.Has(protocol.FeatureOpsDeflate), "ops-deflate not announced")
	ops := shiftOps(3)
	raw, err := protocol.Encode(&protocol.OpBatch{Header: protocol.Header{WH: "wh1", GW: "g1"}, First: 3, Last: ops[len(ops)-1].Seq, Ops: ops, HLC: ops[0].HLC, Deflate: true})
	require.NoError(t, err)
	a = g.waitAck(g.send(raw))
	require.Empty(t, a.Error)
	require.Equal(t, ops[len(ops)-1].Seq, a.WM)
	require.False(t, a.Features.Has(protocol.FeatureOpsDeflate))
}
