package routing

import (
	"context"

	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// CancelOrderTasks marks every pick task of a cancelled order cancelled,
// open or already closed, and sends each to its gateway again: an open
// task is no longer picked, and a pack station refuses to pack the order
// (docs/DESIGN.md, "Pack and ship by scan"). What was picked stays on the
// task (Picked), for a person to put back. It returns how many tasks it
// changed; a second call changes none.
func (s *Service) CancelOrderTasks(_ context.Context, wh, order string) (int, error) {
	n := 0
	err := s.b.Update(func(tx store.Tx) error {
		n = 0
		tasks, err := tx.Tasks(wh)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			if t.Kind != "pick" || t.Order != order || t.Status == "cancelled" {
				continue
			}
			t.Status = "cancelled"
			target, err := masterdata.GatewayOf(tx, wh, t.Location)
			if err != nil {
				return err
			}
			if err := tx.PutTask(wh, target, t); err != nil {
				return err
			}
			if err := masterdata.SendToPackStations(tx, wh, target, t); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
