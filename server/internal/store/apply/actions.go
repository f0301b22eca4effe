package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// IssueOp implements store.Actions: it applies an op issued by the server
// itself (origin "@server") with the warehouse's next server seq.
func (e *Engine) IssueOp(ctx context.Context, wh string, op protocol.Op) (protocol.Op, store.Result, error) {
	var out protocol.Op
	var res store.Result
	err := e.b.Update(ctx, NewScope([]GW{{wh, protocol.ServerOrigin}}, nil, Keys(wh, []protocol.Op{op})), func(tx Tx) error {
		var err error
		out, res, err = Issue(tx, wh, op)
		return err
	})
	if err != nil {
		return out, store.Result{}, err
	}
	return out, res, nil
}

// IssueOps implements store.Actions: it applies server-origin ops of wh
// in order in one transaction, so a chunk is applied whole or (on a store
// error, returned) not at all. An op that is invalid or would take a key
// beyond ±ledger.MaxKeyQty is refused alone — its Issued.Err says why, it
// writes nothing and takes no seq — and the others apply. shape (may be
// nil) sees each op with whether its stock key has records yet.
func (e *Engine) IssueOps(ctx context.Context, wh string, ops []protocol.Op, shape store.Shape) ([]store.Issued, store.Result, error) {
	var out []store.Issued
	var total store.Result
	err := e.b.Update(ctx, NewScope([]GW{{wh, protocol.ServerOrigin}}, nil, Keys(wh, ops)), func(tx Tx) error {
		out, total = make([]store.Issued, len(ops)), store.Result{}
		for i, op := range ops {
			if shape != nil {
				_, known, err := tx.GetKey(ledger.Key{WH: wh, Location: op.Location, SKU: op.SKU, Lot: op.Lot, Owner: op.Owner, Status: op.Status})
				if err != nil {
					return err
				}
				if !shape(&op, known) {
					out[i] = store.Issued{Op: op, Skipped: true}
					continue
				}
			}
			stamped, res, err := issueChecked(tx, wh, op)
			out[i] = store.Issued{Op: stamped, Err: err}
			if errors.Is(err, errRefused) {
				continue
			}
			if err != nil {
				return fmt.Errorf("op %d of %d: %w", i+1, len(ops), err)
			}
			total.WM = res.WM
			total.Applied += res.Applied
			total.Changes = append(total.Changes, res.Changes...)
			total.Conflicts = append(total.Conflicts, res.Conflicts...)
		}
		return nil
	})
	if err != nil {
		return nil, store.Result{}, err
	}
	for i := range out {
		if out[i].Err != nil {
			out[i].Err = errors.Unwrap(out[i].Err) // the reason, without errRefused
		}
	}
	return out, total, nil
}

// errRefused marks an op IssueOps refuses alone.
var errRefused = errors.New("refused")

// issueChecked is Issue for IssueOps: an op that fails validation or the
// per-key bound is refused (an error wrapping errRefused and the reason)
// before anything of it is written.
func issueChecked(tx Tx, wh string, op protocol.Op) (protocol.Op, store.Result, error) {
	seq, err := tx.Watermark(wh, protocol.ServerOrigin)
	if err != nil {
		return op, store.Result{}, err
	}
	op.Seq, op.GW = seq+1, protocol.ServerOrigin
	if err := Validate(&op); err != nil {
		return op, store.Result{}, refused(err)
	}
	if err := ledger.CheckQty(tx, wh, protocol.ServerOrigin, &op); err != nil {
		if errors.Is(err, ledger.ErrQtyBound) {
			return op, store.Result{}, refused(err)
		}
		return op, store.Result{}, err
	}
	return Issue(tx, wh, op)
}

// refused wraps err so that errors.Unwrap gives it back and errors.Is
// finds errRefused.
func refused(err error) error { return refusedErr{err} }

type refusedErr struct{ err error }

func (r refusedErr) Error() string        { return r.err.Error() }
func (r refusedErr) Unwrap() error        { return r.err }
func (r refusedErr) Is(target error) bool { return target == errRefused }

// Issue applies a server-origin op in tx, whose scope must hold wh's
// "@server" watermark: it takes the warehouse's next server seq, merges the
// op, runs conflict detection, logs the stock and the op downstream, and
// returns the stamped op.
func Issue(tx Tx, wh string, op protocol.Op) (protocol.Op, store.Result, error) {
	seq, err := tx.Watermark(wh, protocol.ServerOrigin)
	if err != nil {
		return op, store.Result{}, err
	}
	seq++
	op.Seq, op.GW = seq, protocol.ServerOrigin
	if err := Validate(&op); err != nil {
		return op, store.Result{}, err
	}
	res, err := merge(tx, nil, wh, protocol.ServerOrigin, &op, nil)
	if err != nil {
		return op, res, err
	}
	if err := appendStock(tx, res.Changes); err != nil {
		return op, res, err
	}
	if err := tx.AppendDown(wh, "", protocol.DownOp, fmt.Sprintf("op/%d", seq), op); err != nil {
		return op, res, err
	}
	res.WM = seq
	return op, res, tx.SetWatermark(wh, protocol.ServerOrigin, seq)
}

// ResolveConflict implements store.Actions: it marks a conflict resolved
// and carries out the action in the same transaction: "adjust" issues a
// server-origin adjust op on the conflict's key (by default bringing its
// on-hand to 0); "recount" sends a count task for its location to the
// warehouse's gateways and leaves the conflict acknowledged until a count
// of the location is scanned (closeCountTasks); "accept" keeps the records
// as they are.
func (e *Engine) ResolveConflict(ctx context.Context, id string, r store.Resolution) (store.ResolveResult, error) {
	var c conflicts.Conflict
	var found bool
	if err := e.b.View(ctx, func(tx Tx) error {
		var err error
		c, found, err = tx.GetConflict(id)
		return err
	}); err != nil {
		return store.ResolveResult{}, fmt.Errorf("resolve conflict %q: %w", id, err)
	}
	if !found {
		return store.ResolveResult{}, fmt.Errorf("conflict %q: %w", id, conflicts.ErrNotFound)
	}
	s := NewScope(nil, []string{c.Warehouse}, nil)
	if r.Action == conflicts.ResolutionAdjust {
		var keys []ledger.Key
		if c.Location != "" && c.SKU != "" {
			keys = []ledger.Key{c.Key()}
		}
		s = NewScope([]GW{{c.Warehouse, protocol.ServerOrigin}}, nil, keys)
	}
	var out store.ResolveResult
	err := e.b.Update(ctx, s, func(tx Tx) error {
		var err error
		out, err = resolve(tx, id, r)
		return err
	})
	if err != nil {
		return store.ResolveResult{}, err
	}
	return out, nil
}

func resolve(tx Tx, id string, r store.Resolution) (store.ResolveResult, error) {
	var out store.ResolveResult
	c, ok, err := tx.GetConflict(id)
	if err != nil {
		return out, err
	}
	if !ok {
		return out, fmt.Errorf("conflict %q: %w", id, conflicts.ErrNotFound)
	}
	switch r.Action {
	case conflicts.ResolutionAdjust:
		if c.Location == "" || c.SKU == "" {
			return out, fmt.Errorf("conflict %q names no stock key to adjust; resolve with accept or recount", id)
		}
		qty := r.Qty
		if qty == 0 {
			ks, _, err := tx.GetKey(c.Key())
			if err != nil {
				return out, err
			}
			qty = -ks.OnHand()
		}
		if qty == 0 {
			return out, fmt.Errorf("conflict %q: nothing to adjust (on-hand is 0); give qty", id)
		}
		op, res, err := Issue(tx, c.Warehouse, protocol.Op{HLC: r.HLC, Kind: protocol.OpAdjust, Location: c.Location, SKU: c.SKU, Lot: c.Lot, Owner: c.Owner, Status: c.StockStatus, Qty: qty,
			Reason: "CONFLICT-RESOLUTION", Operator: r.By, Refs: &protocol.Refs{Conflict: id}})
		if err != nil {
			return out, err
		}
		out.Op, out.Result = &op, res
	case conflicts.ResolutionRecount:
		if c.Location == "" {
			return out, fmt.Errorf("conflict %q names no location to recount", id)
		}
		t := protocol.Task{ID: "recount-" + shortID(id), Kind: "count", Location: c.Location, Conflict: id, Reason: "recount: " + string(c.Kind), Status: "open"}
		if err := PutTask(tx, c.Warehouse, "", t); err != nil {
			return out, err
		}
		out.Task = &t
	}
	var task string
	if out.Task != nil {
		task = out.Task.ID
	}
	res, err := conflicts.ResolveAt(tx, id, r.Action, r.By, task, r.HLC)
	if err != nil {
		return out, err
	}
	out.Conflict = res
	return out, nil
}

// PutTask stores a task of wh and sends it downstream to target ("" for
// every gateway of wh), compacted per task id.
func PutTask(tx Tx, wh, target string, t protocol.Task) error {
	if err := tx.PutTask(wh, t); err != nil {
		return err
	}
	return tx.AppendDown(wh, target, protocol.DownTask, "task/"+t.ID, t)
}

// shortID makes a task ID from a conflict ID.
func shortID(id string) string {
	r := strings.NewReplacer(":", "-", "/", "-", "%", "")
	s := r.Replace(id)
	if len(s) > 48 {
		s = s[len(s)-48:]
	}
	return s
}

// QuarantineAction implements store.Actions: it re-applies ("reapply") or
// rejects ("reject") a quarantined op and resolves its quarantined-op
// conflict. Re-applying validates the op again (its own validation and the
// master-data check); an op that still fails stays quarantined and the
// error says why.
func (e *Engine) QuarantineAction(ctx context.Context, wh, gw string, seq uint64, action, by string) (store.Result, error) {
	var res store.Result
	err := e.b.Update(ctx, NewScope(nil, []string{wh}, nil), func(tx Tx) error {
		res = store.Result{}
		q, ok, err := tx.Quarantined(wh, gw, seq)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("quarantined op %s/%s/%d: %w", wh, gw, seq, store.ErrNotFound)
		}
		if q.Status != "" {
			return fmt.Errorf("quarantined op %s/%s/%d was already %s", wh, gw, seq, q.Status)
		}
		switch action {
		case "reject":
			q.Status = "rejected"
		case "reapply":
			op := q.Op
			op.Seq = seq
			if _, err := e.validate(tx, wh, &op, nil); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return err
				}
				return fmt.Errorf("still invalid: %w — fix the master data or reject it", err)
			}
			if res, err = merge(tx, nil, wh, gw, &op, nil); err != nil {
				return err
			}
			if err := appendStock(tx, res.Changes); err != nil {
				return err
			}
			q.Status = "reapplied"
		default:
			return fmt.Errorf("action %q: want reapply or reject", action)
		}
		q.By = by
		if _, err := conflicts.Resolve(tx, conflicts.Quarantined(wh, gw, seq, "").ID, conflicts.ResolutionAccept, by); err != nil &&
			!errors.Is(err, conflicts.ErrNotFound) && !errors.Is(err, conflicts.ErrResolved) {
			return err
		}
		return tx.PutQuarantined(q)
	})
	if err != nil {
		return store.Result{}, err
	}
	return res, nil
}

// PutOrder implements store.Actions: it creates or replaces an order and
// its line quantities, and re-checks over-picks of its lines (picks may
// have arrived before it).
func (e *Engine) PutOrder(ctx context.Context, o store.Order) ([]conflicts.Conflict, error) {
	var changed []conflicts.Conflict
	err := e.b.Update(ctx, NewScope(nil, []string{o.Warehouse}, nil), func(tx Tx) error {
		var err error
		changed, err = PutOrder(tx, o)
		return err
	})
	return changed, err
}

// PutOrder writes o in tx and re-checks the over-picks of its lines.
func PutOrder(tx Tx, o store.Order) ([]conflicts.Conflict, error) {
	if err := tx.PutOrder(o); err != nil {
		return nil, fmt.Errorf("order %s/%s: %w", o.Warehouse, o.ID, err)
	}
	var changed []conflicts.Conflict
	for _, l := range o.Lines {
		cs, err := conflicts.RecheckOrderLine(tx, o.Warehouse, o.ID, l.Line)
		if err != nil {
			return nil, err
		}
		changed = append(changed, cs...)
	}
	return changed, nil
}

// Raise records a conflict built outside the apply path (an oversell from
// the order model, a master-data notice) with the lifecycle rules of
// conflicts.Raise, and reports whether anything was written.
func Raise(tx conflicts.Store, c conflicts.Conflict) (conflicts.Conflict, bool, error) {
	return conflicts.Raise(tx, c)
}
