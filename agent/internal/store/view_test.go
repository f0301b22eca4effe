package store

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

func genOp(t *rapid.T) protocol.Op {
	locs := []string{"A", "B"}
	op := protocol.Op{Location: rapid.SampledFrom(locs).Draw(t, "loc"), SKU: rapid.SampledFrom([]string{"x", "y"}).Draw(t, "sku"), Qty: int64(rapid.IntRange(1, 4).Draw(t, "qty"))}
	op.Owner = rapid.SampledFrom([]string{"", "acme"}).Draw(t, "owner")
	op.Status = rapid.SampledFrom([]protocol.StockStatus{protocol.StatusAvailable, protocol.StatusHold}).Draw(t, "status")
	switch rapid.IntRange(0, 5).Draw(t, "kind") {
	case 5:
		op.Kind, op.ToStatus = protocol.OpStatus, protocol.StatusHold-op.Status
	case 0:
		op.Kind = protocol.OpReceive
	case 1:
		op.Kind = protocol.OpPick
	case 2:
		op.Kind = protocol.OpMove
		op.To = map[string]string{"A": "B", "B": "A"}[op.Location]
	case 3:
		op.Kind = protocol.OpCount
		op.Qty = int64(rapid.IntRange(0, 6).Draw(t, "cnt"))
	case 4:
		op.Kind, op.Scope, op.SKU, op.Qty, op.Owner, op.Status = protocol.OpCount, protocol.ScopeLocation, "", 0, "", protocol.StatusAvailable
		op.Lines = []protocol.CountLine{{SKU: "x", Qty: int64(rapid.IntRange(0, 6).Draw(t, "lq")), Owner: rapid.SampledFrom([]string{"", "acme"}).Draw(t, "lowner")}}
	}
	return op
}

// foldOwn applies own ops in seq order on top of server values: a delta
// adds, a count sets (location counts zero the keys they do not list).
func foldOwn(base map[ledger.Key]int64, own []protocol.Op) map[ledger.Key]int64 {
	out := map[ledger.Key]int64{}
	for k, v := range base {
		out[k] = v
	}
	for i := range own {
		op := &own[i]
		if op.Kind.IsCount() {
			listed := map[ledger.Key]bool{}
			for _, l := range ledger.CountLines("", op) {
				out[l.Key], listed[l.Key] = l.Qty, true
			}
			if op.Scope == protocol.ScopeLocation {
				for k := range out {
					if k.Location == op.Location && !listed[k] && k.CoveredByLocCount() {
						out[k] = 0
					}
				}
			}
			continue
		}
		for _, e := range ledger.Deltas("", op) {
			out[e.Key] += e.Qty
		}
	}
	return out
}

// TestViewIsServerValuePlusPendingAfterEveryStep: the agent's view is the
// server's value (as of the up watermark it reflects) plus this gateway's
// ops after that watermark, whatever interleaving of local commits, server
// snapshots (with other gateways' work) and acks happens — including a
// server that goes back in time (Regress: restored from a backup holding
// a prefix of our ops, or replaced by an empty one): until its downstream
// arrives the view is our ops after its watermark alone.
func TestViewIsServerValuePlusPendingAfterEveryStep(t *testing.T) {
	keys, deletes := pruneKeys, pruneDeletes
	defer func() { pruneKeys, pruneDeletes = keys, deletes }()
	rapid.Check(t, func(t *rapid.T) {
		// Pruning in chunks of any size (view.go's bounds, small here).
		pruneKeys = rapid.SampledFrom([]int{1, 2, 3, keys}).Draw(t, "pruneKeys")
		pruneDeletes = rapid.SampledFrom([]int{1, 2, 3, deletes}).Draw(t, "pruneDeletes")
		dir, err := os.MkdirTemp("", "agent-view")
		require.NoError(t, err)
		defer os.RemoveAll(dir)
		s, err := Open(Options{Dir: dir, Small: true})
		require.NoError(t, err)
		defer s.Close()
		var own []protocol.Op            // committed, stamped
		var others []ledger.Sourced      // other gateways' ops the server has
		var upWM uint64                  // what the last server snapshot reflects
		server := map[ledger.Key]int64{} // server values as last sent
		var down uint64
		steps := rapid.IntRange(1, 25).Draw(t, "steps")
		for step := 0; step < steps; step++ {
			switch rapid.IntRange(0, 3).Draw(t, "action") {
			case 0: // an operator commits an op locally
				ops, err := s.Commit(context.Background(), &Commit{Device: "d", Ops: []protocol.Op{genOp(t)}, KeepSession: true})
				require.NoError(t, err)
				own = append(own, ops...)
			case 1: // another gateway's op reaches the server
				op := genOp(t)
				op.Seq, op.HLC = uint64(len(others)+1), protocol.MakeHLC(int64(1+len(others)), 0)
				others = append(others, ledger.Sourced{WH: "", GW: "other", Op: op})
			case 2: // the server applies a prefix of our ops and sends stock
				u := uint64(rapid.IntRange(int(upWM), len(own)).Draw(t, "u"))
				all := append([]ledger.Sourced(nil), others...)
				for _, op := range own[:u] {
					all = append(all, ledger.Sourced{WH: "", GW: "me", Op: op})
				}
				server = ledger.Fold(all)
				var vals []protocol.StockValue
				for k, v := range server {
					vals = append(vals, protocol.StockValue{Location: k.Location, SKU: k.SKU, Lot: k.Lot, Owner: k.Owner, Status: k.Status, OnHand: v})
				}
				down++
				require.NoError(t, s.ApplyDownItems(Down{Stock: vals}, u, down))
				upWM = u
			case 3: // the server is restored to a state holding own[:r]
				r := uint64(rapid.IntRange(0, int(upWM)).Draw(t, "restore"))
				got, err := s.Regress(r, "restored")
				require.NoError(t, err)
				require.Equal(t, len(own)-int(r), got.Replayed)
				p, err := s.Positions()
				require.NoError(t, err)
				require.Equal(t, Positions{LastSeq: uint64(len(own)), Acked: r, Epoch: "restored", First: 1}, p)
				others = nil
				server = map[ledger.Key]int64{}
				upWM, down = r, 0
			}
			want := foldOwn(server, own[upWM:])
			rows, err := s.Stock("", "")
			require.NoError(t, err)
			got := map[ledger.Key]int64{}
			for _, r := range rows {
				got[ledger.Key{Location: r.Location, SKU: r.SKU, Lot: r.Lot, Owner: r.Owner, Status: r.Status}] = r.OnHand
			}
			for k, v := range want { // keys the view never saw read as 0
				if _, ok := got[k]; !ok && v == 0 {
					got[k] = 0
				}
			}
			for k, v := range got {
				if _, ok := want[k]; !ok && v == 0 {
					delete(got, k)
				}
			}
			require.Equal(t, want, got, "step %d", step)
		}
	})
}
