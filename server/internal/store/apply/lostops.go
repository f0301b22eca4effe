package apply

import (
	"context"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// RecordLostOps implements store.LostOpsRecorder: a gateway's hello says
// the oldest op it still holds is first (protocol SPEC.md §6.1). When the
// gateway's watermark is below first-1, the ops in between are beyond the
// gateway's retention and will never arrive: in one transaction a lost-ops
// conflict names the exact range and the watermark moves to first-1, so
// that replication resumes at first. Otherwise nothing changes (Verdict
// Duplicate). The result carries the conflict (for its alert) and the new
// watermark.
func (e *Engine) RecordLostOps(ctx context.Context, wh, gw string, first uint64) (store.Result, error) {
	var res store.Result
	err := e.b.Update(ctx, NewScope([]GW{{wh, gw}}, nil, nil), func(tx Tx) error {
		res = store.Result{Verdict: protocol.Duplicate}
		wm, err := tx.Watermark(wh, gw)
		if err != nil {
			return err
		}
		res.WM = wm
		if first <= wm+1 {
			return nil
		}
		c, written, err := conflicts.Raise(tx, conflicts.LostOps(wh, gw, wm+1, first-1))
		if err != nil {
			return err
		}
		if written {
			res.Conflicts = append(res.Conflicts, c)
		}
		res.Verdict, res.WM = protocol.Apply, first-1
		if err := tx.SetWatermark(wh, gw, first-1); err != nil {
			return err
		}
		return tx.Applied(wh, gw, &res)
	})
	return res, err
}
