package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// WithOpLog gives Run a way to read the op log's value for wh/gw/seq as the
// backend stored it (nil when there is none), for the checks that the log
// keeps an op as received. Without it those checks are skipped.
func WithOpLog(f func(t require.TestingT, s store.Store, wh, gw string, seq uint64) []byte) Option {
	return func(c *config) { c.opLog = f }
}

// withUnknownKey returns an op's encoding with one more pair, key 99 (no
// field of Op), as a newer sender might add: it decodes to the same op but
// is not that op's encoding, so a log that keeps it kept what it received.
func withUnknownKey(t require.TestingT, enc []byte) []byte {
	require.True(t, enc[0] >= 0xa0 && enc[0] < 0xb7, "a map of fewer than 23 pairs")
	out := append([]byte{enc[0] + 1}, enc[1:]...)
	return append(out, 0x18, 0x63, 0x61, 0x78) // 99: "x"
}

// frame encodes ops (each as its bytes in raws) as one batch of wh/gw in
// the given wire form and decodes it as the ingest does.
func frame(t require.TestingT, wh, gw string, raws []protocol.RawOp, first uint64, deflate bool) *protocol.OpBatch {
	rb := &protocol.RawOpBatch{Header: protocol.Header{WH: wh, GW: gw}, First: first, Last: first + uint64(len(raws)) - 1, Ops: raws, HLC: 1 << 16, Deflate: deflate}
	wire, err := protocol.Encode(rb)
	require.NoError(t, err)
	m, err := protocol.Decode(wire)
	require.NoError(t, err)
	b := m.(*protocol.OpBatch)
	require.Equal(t, deflate, b.Deflate)
	return b
}

// stampOwners is a master-data check that, as the owner stamping of the
// master data does, gives an op (or count line) that names no owner the
// owner of its sku, changing the op in place; skus starting with "o" have
// one ("own-" and the sku).
func stampOwners(_ store.Tx, _ string, op *protocol.Op) error {
	ownerOf := func(sku string) string {
		if strings.HasPrefix(sku, "o") {
			return "own-" + sku
		}
		return ""
	}
	if op.Owner == "" && op.Scope == protocol.ScopeKey {
		op.Owner = ownerOf(op.SKU)
	}
	for i := range op.Lines {
		if l := &op.Lines[i]; l.Owner == "" {
			l.Owner = ownerOf(l.SKU)
		}
	}
	return nil
}

// testOpLogAsReceived: an op merged as it arrived is in the log byte for
// byte as received (an unknown key included), from a plain and from an
// ops-deflate batch; an op the master-data check changed (an owner
// stamped, on the op or in place on a count line) is logged encoded again,
// with the stamp.
func testOpLogAsReceived(t *testing.T, open func(t *testing.T) store.Store, c config) {
	if c.opLog == nil {
		t.Skip("the backend gives no way to read its op log")
	}
	s := open(t)
	s.SetOpCheck(stampOwners)
	defer s.SetOpCheck(nil)
	for _, deflate := range []bool{false, true} {
		gw := fmt.Sprintf("g-deflate-%v", deflate)
		ops := []protocol.Op{
			{Seq: 1, HLC: protocol.MakeHLC(1000, 0), Kind: protocol.OpReceive, Location: "L", SKU: "s", Qty: 3, Device: "d1", Raw: []string{"0104012345678901"}},
			{Seq: 2, HLC: protocol.MakeHLC(2000, 0), Kind: protocol.OpMove, Location: "L", To: "M", SKU: "s", Qty: 1, Refs: &protocol.Refs{Task: "T1"}},
			{Seq: 3, HLC: protocol.MakeHLC(3000, 0), Kind: protocol.OpReceive, Location: "L", SKU: "oil", Qty: 2},
			{Seq: 4, HLC: protocol.MakeHLC(4000, 0), Kind: protocol.OpCount, Scope: protocol.ScopeLocation, Location: "M",
				Lines: []protocol.CountLine{{SKU: "s", Qty: 1}, {SKU: "oat", Qty: 5}}},
			{Seq: 5, HLC: protocol.MakeHLC(5000, 0), Kind: protocol.OpReceive, Location: "L", SKU: "oil", Qty: 1, Owner: "named"},
		}
		raws := make([]protocol.RawOp, len(ops))
		for i := range ops {
			enc, err := protocol.Marshal(&ops[i])
			require.NoError(t, err)
			raws[i] = enc
		}
		raws[0] = withUnknownKey(t, raws[0])
		raws[4] = withUnknownKey(t, raws[4])
		b := frame(t, "w", gw, raws, 1, deflate)
		res := Apply(t, s, b)
		require.Equal(t, 5, res.Applied)

		for _, i := range []int{0, 1, 4} {
			require.Equal(t, []byte(raws[i]), c.opLog(t, s, "w", gw, ops[i].Seq), "op %d is logged as received", ops[i].Seq)
		}
		stamped := []protocol.Op{ops[2], ops[3]}
		stamped[0].Owner = "own-oil"
		stamped[1].Lines = []protocol.CountLine{{SKU: "s", Qty: 1}, {SKU: "oat", Qty: 5, Owner: "own-oat"}}
		for _, want := range stamped {
			got := c.opLog(t, s, "w", gw, want.Seq)
			enc, err := protocol.Marshal(&want)
			require.NoError(t, err)
			require.Equal(t, enc, got, "op %d is logged encoded again, stamped", want.Seq)
			var op protocol.Op
			require.NoError(t, protocol.Unmarshal(got, &op))
			require.Equal(t, want, op)
		}
	}
}

// genValidOp draws a valid op of any kind (every optional field in play),
// over skus of which those starting with "o" get an owner stamped.
func genValidOp(t *rapid.T, seq uint64) protocol.Op {
	sku := rapid.SampledFrom([]string{"s", "t", "oil", "oat"})
	loc := rapid.SampledFrom([]string{"L1", "L2", "L3"})
	word := rapid.StringMatching(`[a-z0-9-]{0,8}`)
	op := protocol.Op{Seq: seq, HLC: protocol.MakeHLC(rapid.Int64Range(1, 1<<40).Draw(t, "ms"), uint16(rapid.IntRange(0, 3).Draw(t, "logical"))),
		Location: loc.Draw(t, "loc"), SKU: sku.Draw(t, "sku"), Lot: rapid.SampledFrom([]string{"", "lot-1"}).Draw(t, "lot"),
		Qty: rapid.Int64Range(1, 50).Draw(t, "qty"), Owner: rapid.SampledFrom([]string{"", "", "acme"}).Draw(t, "owner"),
		Device: word.Draw(t, "device"), Operator: word.Draw(t, "operator"), Reason: word.Draw(t, "reason"),
		Expiry: rapid.SampledFrom([]string{"", "2027-01-31"}).Draw(t, "expiry"), Flags: uint32(rapid.IntRange(0, 31).Draw(t, "flags")),
		SSCC: rapid.SampledFrom([]string{"", "106141412345678908"}).Draw(t, "sscc")}
	for i, n := 0, rapid.IntRange(0, 2).Draw(t, "nraw"); i < n; i++ {
		op.Raw = append(op.Raw, word.Draw(t, "raw"))
	}
	for i, n := 0, rapid.IntRange(0, 2).Draw(t, "nepc"); i < n; i++ {
		op.EPCs = append(op.EPCs, rapid.SliceOfN(rapid.Byte(), 12, 12).Draw(t, "epc"))
	}
	if rapid.Bool().Draw(t, "refs") {
		op.Refs = &protocol.Refs{PO: word.Draw(t, "po"), POLine: uint32(rapid.IntRange(0, 9).Draw(t, "poline")), Task: word.Draw(t, "task")}
	}
	switch rapid.IntRange(0, 6).Draw(t, "kind") {
	case 0:
		op.Kind = protocol.OpReceive
	case 1:
		op.Kind = protocol.OpPick
	case 2:
		op.Kind = rapid.SampledFrom([]protocol.OpKind{protocol.OpMove, protocol.OpPutaway}).Draw(t, "move")
		op.To = "M"
	case 3:
		op.Kind = protocol.OpAdjust
		op.Qty = -op.Qty
	case 4:
		op.Kind, op.Qty = protocol.OpCount, op.Qty-1
	case 5:
		op.Kind, op.Scope, op.SKU, op.Lot, op.Qty, op.Owner = protocol.OpCount, protocol.ScopeLocation, "", "", 0, ""
		for i, n := 0, rapid.IntRange(0, 3).Draw(t, "nlines"); i < n; i++ {
			op.Lines = append(op.Lines, protocol.CountLine{SKU: sku.Draw(t, "lsku"), Qty: rapid.Int64Range(0, 9).Draw(t, "lqty"),
				Owner: rapid.SampledFrom([]string{"", "acme"}).Draw(t, "lowner"), Status: protocol.StockStatus(rapid.IntRange(0, 1).Draw(t, "lstatus"))})
		}
		return op
	case 6:
		op.Kind, op.ToStatus = protocol.OpStatus, protocol.StatusHold
	}
	if op.Kind != protocol.OpStatus && rapid.Bool().Draw(t, "hold") {
		op.Status = protocol.StatusHold
	}
	return op
}

// testOpLogDecodesToMerged: for random ops, some encoded with a key the
// server does not know, sent plain or compressed, applied one batch at a
// time (in chunks, where the backend chunks) or grouped, under a check
// that stamps owners: the log's bytes decode to the op that was merged
// (the received op, stamped where the check stamped it), and are the
// received bytes exactly when the check left the op as it was.
func testOpLogDecodesToMerged(t *testing.T, open func(t *testing.T) store.Store, c config) {
	if c.opLog == nil {
		t.Skip("the backend gives no way to read its op log")
	}
	s := open(t)
	s.SetOpCheck(stampOwners)
	defer s.SetOpCheck(nil)
	ctx := context.Background()
	run := 0
	rapid.Check(t, func(t *rapid.T) {
		run++
		wh, gw := fmt.Sprintf("w%d", run), "g"
		n := rapid.IntRange(1, 80).Draw(t, "n") // past a backend's chunk of one batch (Badger: 32 ops)
		ops := make([]protocol.Op, n)
		raws := make([]protocol.RawOp, n)
		for i := range ops {
			ops[i] = genValidOp(t, uint64(i+1))
			require.NoError(t, ops[i].Validate())
			enc, err := protocol.Marshal(&ops[i])
			require.NoError(t, err)
			if rapid.Bool().Draw(t, "unknown key") {
				enc = withUnknownKey(t, enc)
			}
			raws[i] = enc
		}
		deflate := rapid.Bool().Draw(t, "deflate")
		var batches []store.Batch
		for first := 0; first < n; {
			last := rapid.IntRange(first, n-1).Draw(t, "cut")
			batches = append(batches, store.Batch{WH: wh, GW: gw, B: frame(t, wh, gw, raws[first:last+1], uint64(first+1), deflate)})
			first = last + 1
		}
		if rapid.Bool().Draw(t, "group") {
			rs, err := s.ApplyBatches(ctx, batches)
			require.NoError(t, err)
			require.Len(t, rs, len(batches))
		} else {
			for _, b := range batches {
				_, err := apply(s, b.B)
				require.NoError(t, err)
			}
		}
		for i := range ops {
			merged := ops[i].Clone()
			require.NoError(t, stampOwners(nil, wh, &merged))
			got := c.opLog(t, s, wh, gw, ops[i].Seq)
			var op protocol.Op
			require.NoError(t, protocol.Unmarshal(got, &op), "op %d", i+1)
			require.Equal(t, merged, op, "op %d: the log decodes to the op merged", i+1)
			if merged.Equal(&ops[i]) {
				require.Equal(t, []byte(raws[i]), got, "op %d: unchanged, logged as received", i+1)
			} else {
				enc, err := protocol.Marshal(&merged)
				require.NoError(t, err)
				require.Equal(t, enc, got, "op %d: stamped, logged encoded again", i+1)
			}
		}
	})
}
