package orders

import (
	"context"
	"sort"

	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Oversell conflicts, raised and cleared from reservations against what
// can ship.

// oversold reports whether reservations exceed what can ship: reserved
// units beyond available (sellable − safety). With nothing reserved nothing
// is oversold, however far below zero the stock went (that is a
// negative-stock conflict of its keys, not an oversell).
func oversold(reserved, available int64) bool {
	return reserved > 0 && reserved > available
}

// checkOversell raises the oversell conflict of every sku whose
// reservations exceed what is available, and clears the ones that no
// longer do.
func (s *Service) checkOversell(ctx context.Context, set map[whsku]struct{}) {
	type todo struct {
		ws   whsku
		a    ATS
		prev oversell
		had  bool
	}
	s.oversellMu.Lock()
	defer s.oversellMu.Unlock()
	var work []todo
	s.mu.Lock()
	if !s.active {
		s.mu.Unlock()
		return
	}
	for ws := range set {
		a := s.ats[ws]
		prev, had := s.oversold[ws]
		holds := oversold(a.Reserved, a.Sellable-a.Safety)
		if !holds && !had {
			continue
		}
		if had && holds && prev.reserved == a.Reserved && prev.available == a.Sellable-a.Safety {
			continue
		}
		work = append(work, todo{ws, a, prev, had})
	}
	s.mu.Unlock()
	sort.Slice(work, func(i, j int) bool { return work[i].ws.wh+"\x00"+work[i].ws.sku < work[j].ws.wh+"\x00"+work[j].ws.sku })
	for _, w := range work {
		avail := w.a.Sellable - w.a.Safety
		at := w.prev.at
		if !w.had {
			at = s.cfg.HLC()
		}
		holds := oversold(w.a.Reserved, avail)
		oc := conflicts.Oversell(w.ws.wh, w.ws.sku, w.a.Reserved, avail, at)
		oc.Holds = holds // not with nothing reserved, whatever the stock
		var c conflicts.Conflict
		var written bool
		err := s.st.Update(func(tx store.Tx) error {
			var err error
			c, written, err = tx.RaiseConflict(oc)
			return err
		})
		if err != nil {
			s.log.Error("oversell conflict not recorded", "warehouse", w.ws.wh, "sku", w.ws.sku, "err", err)
			continue
		}
		s.mu.Lock()
		if holds {
			s.oversold[w.ws] = oversell{reserved: w.a.Reserved, available: avail, at: at}
		} else {
			delete(s.oversold, w.ws)
		}
		s.mu.Unlock()
		if written && s.cfg.OnConflict != nil {
			s.cfg.OnConflict(c)
		}
	}
}
