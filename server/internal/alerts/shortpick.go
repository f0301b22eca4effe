package alerts

import (
	"context"
	"fmt"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Short picks (docs/DESIGN.md, "Inventory behaviour the server owns"): a
// pick task closed with fewer units than it asked says the bin's records
// are wrong. The alert stands, one per bin, from the short pick until the
// bin is counted: the count task sent for it is done (a count of the bin
// was merged); then the server clears it.
//
//	al/s/{wh}\0{location}  shortState (CBOR): the standing alert and the count task

const pfxShort = "al/s/"

// KindShortPick: a pick task was closed short; the bin is to be counted.
const KindShortPick Kind = "short-pick"

type shortState struct {
	Alert string `cbor:"1,keyasint"`
	Task  string `cbor:"2,keyasint"` // the count task whose completion clears it
}

func shortKey(wh, loc string) []byte { return []byte(pfxShort + wh + "\x00" + loc) }

// ShortPick is a short pick to alert on.
type ShortPick struct {
	Warehouse, Location, SKU, Lot string
	Task                          string // the pick task closed short
	Order                         string
	Asked, Picked                 int64
	CountTask                     string // the count task sent for the bin
	// Outcome says what became of the units not picked (re-routed,
	// re-allocated, backordered).
	Outcome string
}

// RaiseShortPick raises the short-pick alert of a bin unless one stands
// for it already, and reports whether it raised one.
func (s *Service) RaiseShortPick(sp ShortPick) (Alert, bool, error) {
	msg := fmt.Sprintf("pick task %s (order %s) at %s picked %d of %d × %s", sp.Task, sp.Order, sp.Location, sp.Picked, sp.Asked, sp.SKU)
	if sp.Lot != "" {
		msg += " lot " + sp.Lot
	}
	msg += fmt.Sprintf("; the %d missing left available-to-sell, count task %s sent", sp.Asked-sp.Picked, sp.CountTask)
	if sp.Outcome != "" {
		msg += "; " + sp.Outcome
	}
	key := shortKey(sp.Warehouse, sp.Location)
	a, raised, err := s.raiseIf(Alert{Kind: KindShortPick, Warehouse: sp.Warehouse, SKU: sp.SKU, Location: sp.Location, Message: msg},
		func(tx store.Tx) (bool, error) {
			_, standing, err := tx.Get(key)
			return err == nil && !standing, err
		},
		func(tx store.Tx, id string) error { return putCBOR(tx, key, shortState{Alert: id, Task: sp.CountTask}) })
	if raised {
		s.shorts.Add(1)
	}
	return a, raised, err
}

// ShortPicksStanding reports whether this replica knows of standing
// short-pick alerts (a cheap test before CheckShortPicks).
func (s *Service) ShortPicksStanding() bool { return s.shorts.Load() > 0 }

// Bin is a location of a warehouse.
type Bin struct{ Warehouse, Location string }

// CheckShortPicks clears every short-pick alert whose bin was counted (its
// count task is no longer open), and returns how many it cleared. With
// bins, it looks only at those (the bins a batch touched).
func (s *Service) CheckShortPicks(_ context.Context, bins ...Bin) (int, error) {
	type standing struct {
		key []byte
		wh  string
		st  shortState
	}
	var all []standing
	var done []standing
	err := s.rec.View(func(tx store.Tx) error {
		all, done = nil, nil
		if len(bins) > 0 {
			for _, b := range bins {
				var st shortState
				k := shortKey(b.Warehouse, b.Location)
				if found, err := getCBOR(tx, k, &st); err != nil {
					return err
				} else if found {
					all = append(all, standing{k, b.Warehouse, st})
				}
			}
		} else if err := tx.Scan([]byte(pfxShort), store.ScanOptions{}, func(k, v []byte) error {
			var st shortState
			if err := protocol.Unmarshal(v, &st); err != nil {
				return err
			}
			wh, _, _ := strings.Cut(string(k[len(pfxShort):]), "\x00")
			all = append(all, standing{append([]byte(nil), k...), wh, st})
			return nil
		}); err != nil {
			return err
		}
		for _, sp := range all {
			t, ok, err := tx.Task(sp.wh, sp.st.Task)
			if err != nil {
				return err
			}
			if !ok || (t.Status != "" && t.Status != "open") {
				done = append(done, sp)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sp := range done {
		cleared := false
		s.change(func(tx store.Tx) (Alert, bool, error) {
			cleared = false
			var st shortState
			found, err := getCBOR(tx, sp.key, &st)
			if err != nil || !found || st != sp.st {
				return Alert{}, false, err
			}
			if err := tx.Delete(sp.key); err != nil {
				return Alert{}, false, err
			}
			cleared = true
			return s.closeIn(tx, st.Alert, StatusCleared, "", "")
		}, "clear short-pick alert", "warehouse", sp.wh)
		if cleared {
			n++
		}
	}
	if len(bins) == 0 {
		s.shorts.Store(int64(len(all) - n))
	} else {
		s.shorts.Add(-int64(n))
	}
	return n, nil
}
