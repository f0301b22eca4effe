package orders

import (
	"fmt"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Catching up: the orders any replica wrote since the cursor, read into
// the in-memory model, and the model's bookkeeping of keys and open orders.

func (s *Service) allSKUs() map[whsku]struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[whsku]struct{}, len(s.stock)+len(s.bySKU))
	for k := range s.stock {
		out[k] = struct{}{}
	}
	for k := range s.bySKU {
		out[k] = struct{}{}
	}
	return out
}

// catchUp reads into the model the orders written (by any replica) since
// the cursor and those named by OrderChanged, and channels when asked. It
// returns the skus whose reservations changed, for their picks to be read.
func (s *Service) catchUp() (map[whsku]struct{}, error) {
	s.ordMu.Lock()
	defer s.ordMu.Unlock()
	s.mu.Lock()
	named, reload, cursor := s.dirtyO, s.reloadCh, s.cursor
	s.dirtyO, s.reloadCh = map[okey]struct{}{}, false
	s.mu.Unlock()
	var (
		seq   uint64
		recs  []Order
		chans map[string]Channel
	)
	err := s.st.View(func(tx store.Tx) error {
		var err error
		if seq, err = getU64(tx, []byte(keySeq)); err != nil {
			return err
		}
		if recs, err = readLog(tx, cursor); err != nil {
			return err
		}
		got := map[okey]bool{}
		for _, o := range recs {
			got[okey{o.Warehouse, o.ID}] = true
		}
		for k := range named {
			if got[k] {
				continue
			}
			var o Order
			if found, err := getCBOR(tx, orderKey(k.wh, k.id), &o); err != nil {
				return err
			} else if found {
				recs = append(recs, o)
			}
		}
		if reload {
			chans, err = readChannels(tx)
			return err
		}
		chans = map[string]Channel{}
		for _, o := range recs {
			if _, ok := chans[o.Channel]; ok {
				continue
			}
			var c Channel
			if found, err := getCBOR(tx, channelKey(o.Channel), &c); err != nil {
				return err
			} else if found {
				chans[c.Name] = c
			}
		}
		return nil
	})
	if err != nil {
		s.mu.Lock()
		for k := range named {
			s.dirtyO[k] = struct{}{}
		}
		s.reloadCh = s.reloadCh || reload
		s.mu.Unlock()
		return nil, fmt.Errorf("read orders: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if reload {
		s.channels = chans
		s.publish = true
	} else {
		for n, c := range chans {
			if _, ok := s.channels[n]; !ok {
				s.channels[n] = c
				s.publish = true
			}
		}
	}
	aff := s.applyRecords(recs)
	s.seq, s.cursor = max(s.seq, seq), max(s.cursor, seq)
	return aff, nil
}

// applyRecords puts orders as stored (by any replica) in the model: an open
// one reserves its lines whole until its picks are read, a closed one
// reserves nothing. It returns the skus whose reservations it recomputed;
// s.mu is held.
func (s *Service) applyRecords(recs []Order) map[whsku]struct{} {
	aff := map[whsku]struct{}{}
	for i := range recs {
		rec := &recs[i]
		k := okey{rec.Warehouse, rec.ID}
		held := s.open[k]
		if held != nil && live(rec.Status) && held.Seq == rec.Seq {
			held.Short = append([]string(nil), rec.Short...) // the same write: only Short may have come since
			continue
		}
		if held != nil {
			s.removeOpen(held)
			for _, l := range held.Lines {
				aff[whsku{held.Warehouse, l.SKU}] = struct{}{}
			}
		}
		if !live(rec.Status) {
			continue
		}
		o := cloneOrder(rec)
		for j := range o.Lines {
			o.Lines[j].Picked, o.Lines[j].Reserved = 0, wholeIfReserving(&o, j) // until the picks are read
			aff[whsku{o.Warehouse, o.Lines[j].SKU}] = struct{}{}
		}
		s.addOpen(&o)
		if _, ok := s.channels[o.Channel]; !ok {
			s.channels[o.Channel] = Channel{Name: o.Channel, SharePct: 100, UpdatedMS: o.CreatedMS}
		}
	}
	md := s.masterView()
	for ws := range aff {
		s.recomputeSKU(ws, md)
	}
	if len(aff) > 0 {
		s.publish = true
	}
	return aff
}

// markDirty queues skus for the next recompute; s.mu is held.
func (s *Service) markDirty(set map[whsku]struct{}) {
	for ws := range set {
		s.dirty[ws] = struct{}{}
	}
}

// bumpSeq takes the next reservation sequence for a change of reservations
// the active replica publishes, after reading the orders other replicas
// wrote before it.
func (s *Service) bumpSeq() error {
	s.ordMu.Lock()
	defer s.ordMu.Unlock()
	s.mu.Lock()
	cursor := s.cursor
	s.mu.Unlock()
	var (
		recs []Order
		seq  uint64
	)
	if err := s.st.Update(func(tx store.Tx) error {
		var err error
		recs, seq, err = nextSeq(tx, cursor)
		return err
	}); err != nil {
		return err
	}
	s.mu.Lock()
	aff := s.applyRecords(recs)
	s.markDirty(aff)
	s.seq, s.cursor = max(s.seq, seq), max(s.cursor, seq)
	s.publish = true
	s.mu.Unlock()
	if len(aff) > 0 {
		s.signal()
	}
	return nil
}

// addOpen indexes an open order; s.mu is held.
func (s *Service) addOpen(o *Order) {
	ok := okey{o.Warehouse, o.ID}
	s.open[ok] = o
	for _, l := range o.Lines {
		ws := whsku{o.Warehouse, l.SKU}
		m := s.bySKU[ws]
		if m == nil {
			m = map[okey]struct{}{}
			s.bySKU[ws] = m
		}
		m[ok] = struct{}{}
	}
}

// removeOpen drops an order from the index; s.mu is held.
func (s *Service) removeOpen(o *Order) {
	ok := okey{o.Warehouse, o.ID}
	delete(s.open, ok)
	for _, l := range o.Lines {
		ws := whsku{o.Warehouse, l.SKU}
		delete(s.bySKU[ws], ok)
		if len(s.bySKU[ws]) == 0 {
			delete(s.bySKU, ws)
		}
	}
}
