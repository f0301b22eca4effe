package apply

import (
	"fmt"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// closeCountTasks closes the open count tasks a count op did the work of
// (docs/DESIGN.md, "Exceptions"), whether it was scanned under the task or
// as a free count: a count of a whole location closes every open count
// task of that location; a count of one key closes the tasks of the
// location that name its sku (and lot, when they name one). A task sent by
// a recount resolution closes only for a count stamped after the recount
// was asked for, and then its conflict is resolved (conflicts.RecountDone).
// It returns the conflicts it resolved.
func closeCountTasks(tx Tx, wh, gw string, op *protocol.Op) ([]conflicts.Conflict, error) {
	tasks, err := tx.OpenCountTasks(wh, op.Location)
	if err != nil {
		return nil, err
	}
	var done []conflicts.Conflict
	for _, t := range tasks {
		if op.Scope != protocol.ScopeLocation && (t.SKU != "" && t.SKU != op.SKU || t.Lot != "" && t.Lot != op.Lot) {
			continue
		}
		if op.Scope != protocol.ScopeLocation && t.SKU == "" {
			continue // a whole-location task needs a whole-location count
		}
		if t.Conflict != "" {
			c, ok, err := tx.GetConflict(t.Conflict)
			if err != nil {
				return nil, err
			}
			if ok && c.RecountTask == t.ID && op.HLC < c.RecountAfter {
				continue // counted before the recount was asked for
			}
			c, resolved, err := conflicts.RecountDone(tx, t.Conflict, ledger.OrderOf(gw, op))
			if err != nil {
				return nil, err
			}
			if resolved {
				done = append(done, c)
			}
		}
		t.Status = "done"
		if err := PutTask(tx, wh, "", t); err != nil {
			return nil, fmt.Errorf("close task %s: %w", t.ID, err)
		}
	}
	return done, nil
}
