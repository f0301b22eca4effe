package orders

import (
	"context"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// The model's stock: not every stock key, but per sku of a warehouse and
// per location the sums that availability needs — the on-hand of all the
// keys there (every lot, owner and status) and of the available ones. The
// store keeps one key per lot, owner and status; ATS sums them per
// location anyway (a location is sellable or not as a whole), so the model
// needs nothing finer. A refresh reads a (warehouse, location, sku) group
// whole from the store and replaces its sums.

// stockGroup is a (warehouse, location, sku): the unit the model reads stock in.
type stockGroup struct{ wh, loc, sku string }

// locStock is the stock of one sku at one location.
type locStock struct {
	loc    string
	onHand int64 // every key
	avail  int64 // keys of status available
}

// sums are a group's locStock totals while rows are added up.
type sums struct{ onHand, avail int64 }

func (g *sums) add(r store.StockRow) {
	g.onHand += r.OnHand
	if r.Status == protocol.StatusAvailable {
		g.avail += r.OnHand
	}
}

// readGroups sums every stock key of the store per group, reading the
// keys one at a time (a store of millions of keys is not held as rows).
func readGroups(ctx context.Context, st Store) (map[stockGroup]sums, error) {
	out := map[stockGroup]sums{}
	err := st.StockEach(ctx, store.StockQuery{}, func(r store.StockRow) error {
		g := stockGroup{r.Warehouse, r.Location, r.SKU}
		n := out[g]
		n.add(r)
		out[g] = n
		return nil
	})
	return out, err
}

// groupRows sums stock rows per group.
func groupRows(rows []store.StockRow) map[stockGroup]sums {
	out := map[stockGroup]sums{}
	for _, r := range rows {
		g := stockGroup{r.Warehouse, r.Location, r.SKU}
		s := out[g]
		s.add(r)
		out[g] = s
	}
	return out
}

// intern returns one shared copy of a warehouse or location name: the
// model holds them once per sku, and rows read from the store each bring
// a copy of their own. s.mu is held.
func (s *Service) intern(v string) string {
	if c, ok := s.names[v]; ok {
		return c
	}
	s.names[v] = v
	return v
}

// setGroup records the stock of sku at wh/loc; s.mu is held.
func (s *Service) setGroup(g stockGroup, n sums) {
	ws := whsku{s.intern(g.wh), g.sku}
	ls := s.stock[ws]
	for i := range ls {
		if ls[i].loc == g.loc {
			ls[i].onHand, ls[i].avail = n.onHand, n.avail
			return
		}
	}
	s.stock[ws] = append(ls, locStock{loc: s.intern(g.loc), onHand: n.onHand, avail: n.avail})
}

// hasGroup reports whether the model holds stock of the group; s.mu is held.
func (s *Service) hasGroup(g stockGroup) bool {
	for _, l := range s.stock[whsku{g.wh, g.sku}] {
		if l.loc == g.loc {
			return true
		}
	}
	return false
}
