package masterdata

import (
	"context"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Short picks to act on (docs/DESIGN.md, "Inventory behaviour the server
// owns": short picks). The notice that closes a pick task short records
// the task here in the transaction that takes it, so that what the server
// does about it (Options.OnTaskShort) survives a crash between that
// commit and the action: the action marks its units taken before it takes
// them off the bin (at most once), and drops the record when it is done.
//
//	md/k/{wh}\0{task}   ShortPick (CBOR)
const pShort = "md/k/"

// ShortPick is a pick task closed short whose action is not done yet.
type ShortPick struct {
	Warehouse string        `cbor:"1,keyasint"`
	Task      protocol.Task `cbor:"2,keyasint"`
	// Taken: the units not picked were (being) taken off the bin.
	Taken bool `cbor:"3,keyasint,omitempty"`
	// AtMS is when the server took the notice.
	AtMS int64 `cbor:"4,keyasint,omitempty"`
}

func recordShort(tx store.Tx, wh string, t protocol.Task, at int64) error {
	return putCBOR(tx, key(pShort, wh, t.ID), ShortPick{Warehouse: wh, Task: t, AtMS: at})
}

// PendingShorts lists the short picks whose action is not done.
func (s *Service) PendingShorts(_ context.Context) ([]ShortPick, error) {
	var out []ShortPick
	err := s.b.View(func(tx store.Tx) error {
		out = nil
		return tx.Scan([]byte(pShort), store.ScanOptions{}, func(_, b []byte) error {
			var sp ShortPick
			if err := protocol.Unmarshal(b, &sp); err != nil {
				return err
			}
			out = append(out, sp)
			return nil
		})
	})
	return out, err
}

// ShortTaken marks the units of a short pick as taken off its bin and
// reports whether they were not yet (the caller takes them off only then);
// a short pick without a record was never taken.
func (s *Service) ShortTaken(_ context.Context, wh, task string) (bool, error) {
	first := false
	err := s.b.Update(func(tx store.Tx) error {
		first = false
		var sp ShortPick
		found, err := getCBOR(tx, key(pShort, wh, task), &sp)
		if err != nil || sp.Taken {
			return err
		}
		if !found {
			first = true
			return nil
		}
		sp.Taken, first = true, true
		return putCBOR(tx, key(pShort, wh, task), sp)
	})
	return first, err
}

// ShortDone drops a short pick whose action is done.
func (s *Service) ShortDone(_ context.Context, wh, task string) error {
	return s.b.Update(func(tx store.Tx) error { return tx.Delete(key(pShort, wh, task)) })
}
