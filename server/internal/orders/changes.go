package orders

import (
	"context"
	"fmt"

	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// What the model is told: ledger changes, other replicas' orders and
// channels, master data changes, and re-reading everything.

// Changed records ledger changes (from an applied batch or a server-origin
// op, on any replica); availability follows after the debounce.
func (s *Service) Changed(changes []ledger.Change) {
	if len(changes) == 0 {
		return
	}
	s.mu.Lock()
	for _, c := range changes {
		s.dirtyG[stockGroup{c.Key.WH, c.Key.Location, c.Key.SKU}] = struct{}{}
	}
	s.mu.Unlock()
	s.signal()
}

// OrderChanged records that order id of wh was created, shipped or
// cancelled by another replica: it is read again into the model and what
// it reserves recomputed, after the debounce.
func (s *Service) OrderChanged(wh, id string) {
	s.mu.Lock()
	s.dirtyO[okey{wh, id}] = struct{}{}
	s.mu.Unlock()
	s.signal()
}

// ChannelsChanged records that another replica changed a channel's
// allocation: channels are read again, and availability republished, after
// the debounce.
func (s *Service) ChannelsChanged() {
	s.mu.Lock()
	s.reloadCh = true
	s.publish = true
	s.mu.Unlock()
	s.signal()
}

// Invalidate recomputes everything the model knows (after master data
// changed: sellable locations, safety stock, channel settings), reading
// its stock keys and channels again; keys it never heard of need Reload.
func (s *Service) Invalidate() {
	all := s.allSKUs()
	s.mu.Lock()
	s.mdv = nil // read the master data again
	for k := range all {
		s.dirty[k] = struct{}{}
	}
	s.reloadCh = true
	s.publish = true
	s.mu.Unlock()
	s.signal()
}

// Reload reads everything again, as Start does — every stock key,
// including keys the model never heard of (a replica that missed a feed
// message learns of new keys only so), the open orders and the channels —
// and then recomputes everything as Invalidate does; availability follows
// after the debounce (or at the next Flush), published where it changed.
// The periodic resync (Config.Resync) reloads. It reads all stock: call it
// when the model may have missed changes, not for every change.
func (s *Service) Reload(ctx context.Context) error {
	if err := s.reloadStock(ctx); err != nil {
		return err
	}
	if err := s.reloadOrders(); err != nil {
		return err
	}
	s.Invalidate()
	return nil
}

// reloadStock puts every stock key of the store in the model; a key the
// model holds that the store no longer lists has nothing on hand.
func (s *Service) reloadStock(ctx context.Context) error {
	// Under refreshMu, as refresh reads and applies stock: a read older
	// than one applied already never lands after it.
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	got, err := readGroups(ctx, s.st)
	if err != nil {
		return fmt.Errorf("reload stock: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for g, n := range got {
		s.setGroup(g, n)
	}
	for ws, ls := range s.stock {
		for i := range ls {
			if _, ok := got[stockGroup{ws.wh, ls[i].loc, ws.sku}]; !ok {
				ls[i].onHand, ls[i].avail = 0, 0
			}
		}
	}
	return nil
}

// reloadOrders reads every open order, and the current record of every
// order the model holds open, into the model.
func (s *Service) reloadOrders() error {
	s.ordMu.Lock()
	defer s.ordMu.Unlock()
	s.mu.Lock()
	held := make([]okey, 0, len(s.open))
	for k := range s.open {
		held = append(held, k)
	}
	s.mu.Unlock()
	var (
		seq  uint64
		recs []Order
		gone []okey
	)
	err := s.st.View(func(tx store.Tx) error {
		recs, gone = nil, nil
		var err error
		if seq, err = getU64(tx, []byte(keySeq)); err != nil {
			return err
		}
		want := map[okey]bool{}
		if err := tx.Scan([]byte(pfxOpen), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			if wh, id, ok := split2(k[len(pfxOpen):]); ok {
				want[okey{wh, id}] = true
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range held {
			want[k] = true // closed by another replica, perhaps
		}
		for k := range want {
			var o Order
			if found, err := getCBOR(tx, orderKey(k.wh, k.id), &o); err != nil {
				return err
			} else if found {
				recs = append(recs, o)
			} else {
				gone = append(gone, k)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reload orders: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	aff := s.applyRecords(recs)
	md := s.masterView()
	for _, k := range gone {
		if o := s.open[k]; o != nil {
			s.removeOpen(o)
			for _, l := range o.Lines {
				ws := whsku{o.Warehouse, l.SKU}
				aff[ws] = struct{}{}
				s.recomputeSKU(ws, md)
			}
		}
	}
	s.markDirty(aff)
	s.seq, s.cursor = max(s.seq, seq), max(s.cursor, seq)
	return nil
}
