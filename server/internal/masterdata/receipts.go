package masterdata

import (
	"context"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Receipts returns every purchase order of wh with what was received
// against each line (and against none), from one pass over the
// warehouse's op log: the dashboard's receiving view.
func (s *Service) Receipts(_ context.Context, wh string) ([]PO, error) {
	var out []PO
	err := s.b.View(func(tx store.Tx) error {
		recs, err := listCBOR[poRecord](tx, pPO, wh)
		if err != nil {
			return err
		}
		out = make([]PO, 0, len(recs))
		tallies := make(map[string]*tally, len(recs))
		for _, r := range recs {
			out = append(out, PO{})
			tallies[r.PO.ID] = newTally(r, &out[len(out)-1])
		}
		if len(recs) == 0 {
			return nil
		}
		return tx.ScanOps(wh, func(_ string, op *protocol.Op) error {
			if op.Kind == protocol.OpReceive && op.Refs != nil {
				if t := tallies[op.Refs.PO]; t != nil {
					t.add(op)
				}
			}
			return nil
		})
	})
	return out, err
}

// tally adds up the receive ops of one purchase order into p.
type tally struct {
	p     *PO
	lines map[uint32]bool
}

// newTally fills p from rec with nothing received yet.
func newTally(rec poRecord, p *PO) *tally {
	*p = PO{PurchaseOrder: rec.PO, ClosedBy: rec.ClosedBy, ClosedAt: rec.ClosedAt, Received: map[uint32]int64{}}
	t := &tally{p: p, lines: map[uint32]bool{}}
	for _, l := range rec.PO.Lines {
		t.lines[l.Line] = true
		p.Received[l.Line] += 0
	}
	return t
}

// add counts a receive op against the PO: on its line, or as unexpected.
func (t *tally) add(op *protocol.Op) {
	if t.lines[op.Refs.POLine] {
		t.p.Received[op.Refs.POLine] += op.Qty
		return
	}
	if t.p.Unexpected == nil {
		t.p.Unexpected = map[string]int64{}
	}
	t.p.Unexpected[op.SKU] += op.Qty
}

// OnOrderAll returns, per sku, what the open purchase orders of wh still
// expect (ordered − received, per line, never negative): OnOrder of every
// sku from one pass over the op log.
func (s *Service) OnOrderAll(ctx context.Context, wh string) (map[string]int64, error) {
	pos, err := s.Receipts(ctx, wh)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, p := range pos {
		if p.Status != "" && p.Status != "open" {
			continue
		}
		for _, l := range p.Lines {
			out[l.SKU] += max(l.Qty-p.Received[l.Line], 0)
		}
	}
	return out, nil
}
