package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// The operations behind the conflict, history, order, task and quarantine
// endpoints, with the Badger store's semantics. Each write runs in one
// transaction that takes the locks ApplyBatch takes, in the same order:
// to issue a server-origin op, the warehouse's "@server" watermark row
// (whose wm is the server's last seq in the warehouse), then always the
// warehouse's row. So an action and the merges of its warehouse are serial,
// and they never deadlock: the other rows an action writes (conflicts,
// quarantine, orders, tasks, the downstream log) are written only by
// transactions that hold their warehouse's row.

var _ store.Actions = (*Store)(nil)

// actionTx is the transaction of one action: it holds its warehouse's lock,
// merges through a txLedger, and buffers the rows it writes beside the
// ledger and the downstream entries, which commit sends in one pipeline.
type actionTx struct {
	ctx  context.Context
	tx   pgx.Tx
	l    *txLedger
	wh   string
	head int64 // head of wh's downstream log when locked
	// srvWM is the server's last seq in wh; valid when server is set.
	srvWM  int64
	server bool
	rows   pgx.Batch // op, task and quarantine rows, in order
	down   []downEntry
	check  func(store.Tx, string, *protocol.Op) error // master-data check of re-applied ops
}

// downEntry is a downstream item waiting for its seq.
type downEntry struct {
	target  string
	kind    protocol.DownKind
	itemKey string
	body    []byte
}

// begin starts an action on wh, locking the "@server" watermark row first
// when server is set (to issue ops), then the warehouse's row.
func (s *Store) begin(ctx context.Context, wh string, server bool) (*actionTx, error) {
	a := &actionTx{ctx: ctx, wh: wh, server: server}
	var b pgx.Batch
	b.BeginTx(pgx.TxOptions{})
	if server {
		b.Queue(`INSERT INTO watermarks (wh, gw) VALUES ($1, $2) ON CONFLICT DO NOTHING`, wh, protocol.ServerOrigin)
		b.Queue(`SELECT wm FROM watermarks WHERE wh = $1 AND gw = $2 FOR UPDATE`, wh, protocol.ServerOrigin).
			QueryRow(func(r pgx.Row) error { return r.Scan(&a.srvWM) })
	}
	b.Queue(`INSERT INTO warehouses (wh) VALUES ($1) ON CONFLICT DO NOTHING`, wh)
	b.Queue(`SELECT down_head FROM warehouses WHERE wh = $1 FOR UPDATE`, wh).QueryRow(func(r pgx.Row) error { return r.Scan(&a.head) })
	tx, err := s.sendTx(ctx, &b)
	if err != nil {
		return nil, wrap(err, "lock warehouse %s", wh)
	}
	a.tx, a.l = tx, newTxLedger(ctx, tx)
	return a, nil
}

// rollback ends the transaction unless commit did; deferred by every action.
func (a *actionTx) rollback() { _ = a.tx.Rollback(context.Background()) }

// commit writes what the action buffered — its rows, the ledger's and the
// detector's writes, the downstream entries numbered after the head — and
// commits.
func (a *actionTx) commit() error {
	if err := a.l.queue(&a.rows); err != nil {
		return err
	}
	for _, e := range a.down {
		a.head++
		a.rows.Queue(`INSERT INTO down_log (wh, seq, kind, item_key, target, body) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (wh, kind, item_key) DO UPDATE SET seq = excluded.seq, target = excluded.target, body = excluded.body`,
			a.wh, a.head, int16(e.kind), []byte(e.itemKey), e.target, e.body)
	}
	if len(a.down) > 0 {
		a.rows.Queue(`UPDATE warehouses SET down_head = $2 WHERE wh = $1`, a.wh, a.head)
	}
	if err := a.tx.SendBatch(a.ctx, &a.rows).Close(); err != nil {
		return wrap(err, "write")
	}
	return wrap(a.tx.Commit(a.ctx), "commit")
}

// appendDown queues an item for wh's downstream log (every gateway when
// target is ""), replacing the older entry of the same kind and item key.
func (a *actionTx) appendDown(target string, kind protocol.DownKind, itemKey string, body any) error {
	raw, err := protocol.Marshal(body)
	if err != nil {
		return err
	}
	a.down = append(a.down, downEntry{target: target, kind: kind, itemKey: itemKey, body: raw})
	return nil
}

// appendStock queues the current value of every key in changes.
func (a *actionTx) appendStock(changes []ledger.Change) error {
	seen := map[ledger.Key]bool{}
	for _, c := range changes {
		if seen[c.Key] {
			continue
		}
		seen[c.Key] = true
		ks, _, err := a.l.GetKey(c.Key)
		if err != nil {
			return err
		}
		v := protocol.StockValue{Location: c.Key.Location, SKU: c.Key.SKU, Lot: c.Key.Lot, OnHand: ks.OnHand()}
		if err := a.appendDown("", protocol.DownStock, stockItemKey(c.Key), v); err != nil {
			return err
		}
	}
	return nil
}

// merge logs op of gw (seq set) and merges it: ledger, conflicts, and the
// downstream stock values of the keys it changed.
func (a *actionTx) merge(gw string, seq uint64, op *protocol.Op) (store.Result, error) {
	var res store.Result
	body, err := protocol.Marshal(op)
	if err != nil {
		return res, err
	}
	a.rows.Queue(`INSERT INTO ops (wh, gw, seq, hlc, kind, body) VALUES ($1, $2, $3, $4, $5, $6)`,
		a.wh, gw, int64(seq), int64(op.HLC), int16(op.Kind), body)
	if res.Changes, err = ledger.Apply(a.l, a.wh, gw, op); err != nil {
		return res, err
	}
	if res.Conflicts, err = (&conflicts.Detector{}).Observe(a.l, a.l, a.wh, gw, op, res.Changes); err != nil {
		return res, err
	}
	if err := a.appendStock(res.Changes); err != nil {
		return res, err
	}
	res.Applied = 1
	return res, nil
}

// issueOp applies a server-origin op: it takes the warehouse's next server
// seq, merges the op, runs conflict detection, logs the stock and the op
// downstream, and returns the stamped op.
func (a *actionTx) issueOp(op protocol.Op) (protocol.Op, store.Result, error) {
	if !a.server {
		return op, store.Result{}, errors.New("issue op: the server's watermark row is not locked")
	}
	seq := uint64(a.srvWM) + 1
	op.Seq, op.GW = seq, protocol.ServerOrigin
	if err := validate(&op); err != nil {
		return op, store.Result{}, err
	}
	res, err := a.merge(protocol.ServerOrigin, seq, &op)
	if err != nil {
		return op, res, err
	}
	if err := a.appendDown("", protocol.DownOp, fmt.Sprintf("op/%d", seq), op); err != nil {
		return op, res, err
	}
	a.srvWM, res.WM = int64(seq), seq
	a.rows.Queue(`UPDATE watermarks SET wm = $3, applied_at = now() WHERE wh = $1 AND gw = $2`, a.wh, protocol.ServerOrigin, int64(seq))
	return op, res, nil
}

// fail maps a transient failure to store.ErrConflict; other errors already
// say what failed and are returned as they are.
func fail(err error) error {
	if retryable(err) {
		return store.ErrConflict
	}
	return err
}

// IssueOp implements store.Actions: it applies an op issued by the server
// itself (origin "@server") with the warehouse's next server seq.
func (s *Store) IssueOp(ctx context.Context, wh string, op protocol.Op) (protocol.Op, store.Result, error) {
	a, err := s.begin(ctx, wh, true)
	if err != nil {
		return op, store.Result{}, err
	}
	defer a.rollback()
	out, res, err := a.issueOp(op)
	if err == nil {
		err = a.commit()
	}
	if err != nil {
		return out, store.Result{}, fail(err)
	}
	return out, res, nil
}

// ResolveConflict implements store.Actions: it marks a conflict resolved
// and carries out the action in the same transaction: "adjust" issues a
// server-origin adjust op on the conflict's key (by default bringing its
// on-hand to 0); "recount" sends a count task for its location to the
// warehouse's gateways; "accept" keeps the records as they are.
func (s *Store) ResolveConflict(ctx context.Context, id string, r store.Resolution) (store.ResolveResult, error) {
	var wh string
	err := s.pool.QueryRow(ctx, `SELECT wh FROM conflicts WHERE id = $1`, id).Scan(&wh)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ResolveResult{}, fmt.Errorf("conflict %q: %w", id, conflicts.ErrNotFound)
	}
	if err != nil {
		return store.ResolveResult{}, wrap(err, "resolve conflict %q", id)
	}
	a, err := s.begin(ctx, wh, r.Action == conflicts.ResolutionAdjust)
	if err != nil {
		return store.ResolveResult{}, err
	}
	defer a.rollback()
	out, err := a.resolve(id, r)
	if err == nil {
		err = a.commit()
	}
	if err != nil {
		return store.ResolveResult{}, fail(err)
	}
	return out, nil
}

func (a *actionTx) resolve(id string, r store.Resolution) (store.ResolveResult, error) {
	var out store.ResolveResult
	c, ok, err := a.l.GetConflict(id)
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
			ks, _, err := a.l.GetKey(ledger.Key{WH: c.Warehouse, Location: c.Location, SKU: c.SKU, Lot: c.Lot})
			if err != nil {
				return out, err
			}
			qty = -ks.OnHand()
		}
		if qty == 0 {
			return out, fmt.Errorf("conflict %q: nothing to adjust (on-hand is 0); give qty", id)
		}
		op, res, err := a.issueOp(protocol.Op{HLC: r.HLC, Kind: protocol.OpAdjust, Location: c.Location, SKU: c.SKU, Lot: c.Lot, Qty: qty,
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
		if err := a.putTask("", t); err != nil {
			return out, err
		}
		out.Task = &t
	}
	res, err := conflicts.Resolve(a.l, id, r.Action, r.By)
	if err != nil {
		return out, err
	}
	out.Conflict = res
	return out, nil
}

// putTask stores a task of the warehouse (listed by Tasks) and sends it
// downstream to target ("" for every gateway), compacted per task id.
func (a *actionTx) putTask(target string, t protocol.Task) error {
	body, err := protocol.Marshal(t)
	if err != nil {
		return err
	}
	a.rows.Queue(`INSERT INTO tasks (wh, id, body) VALUES ($1, $2, $3) ON CONFLICT (wh, id) DO UPDATE SET body = excluded.body`, a.wh, t.ID, body)
	return a.appendDown(target, protocol.DownTask, "task/"+t.ID, t)
}

// shortID makes a task ID from a conflict ID, as the Badger store does.
func shortID(id string) string {
	r := strings.NewReplacer(":", "-", "/", "-", "%", "")
	s := r.Replace(id)
	if len(s) > 48 {
		s = s[len(s)-48:]
	}
	return s
}

// QuarantineAction implements store.Actions: it re-applies ("reapply") or
// rejects ("reject") a quarantined op, and resolves its quarantined-op
// conflict. Re-applying validates the op again; an op that still fails
// stays quarantined and the error says why (the op's own validation and
// the master-data check, see SetOpCheck).
func (s *Store) QuarantineAction(ctx context.Context, wh, gw string, seq uint64, action, by string) (store.Result, error) {
	if seq > math.MaxInt64 {
		return store.Result{}, fmt.Errorf("quarantined op %s/%s/%d: %w", wh, gw, seq, store.ErrNotFound)
	}
	a, err := s.begin(ctx, wh, false)
	if err != nil {
		return store.Result{}, err
	}
	defer a.rollback()
	a.check = s.check
	res, err := a.quarantineAction(gw, seq, action, by)
	if err == nil {
		err = a.commit()
	}
	if err != nil {
		return store.Result{}, fail(err)
	}
	return res, nil
}

func (a *actionTx) quarantineAction(gw string, seq uint64, action, by string) (store.Result, error) {
	var res store.Result
	var status string
	var body []byte
	err := a.tx.QueryRow(a.ctx, `SELECT status, body FROM quarantine WHERE wh = $1 AND gw = $2 AND seq = $3`, a.wh, gw, int64(seq)).Scan(&status, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return res, fmt.Errorf("quarantined op %s/%s/%d: %w", a.wh, gw, seq, store.ErrNotFound)
	}
	if err != nil {
		return res, fmt.Errorf("quarantined op %s/%s/%d: %w", a.wh, gw, seq, err)
	}
	if status != "" {
		return res, fmt.Errorf("quarantined op %s/%s/%d was already %s", a.wh, gw, seq, status)
	}
	switch action {
	case "reject":
		status = "rejected"
	case "reapply":
		var op protocol.Op
		if err := protocol.Unmarshal(body, &op); err != nil {
			return res, fmt.Errorf("quarantined op %s/%s/%d: %w", a.wh, gw, seq, err)
		}
		err := validate(&op)
		if err == nil && a.check != nil {
			err = a.check(checkTx(a.ctx, a.tx), a.wh, &op)
		}
		if err != nil {
			return res, fmt.Errorf("still invalid: %w — fix the master data or reject it", err)
		}
		if res, err = a.merge(gw, seq, &op); err != nil {
			return res, err
		}
		status = "reapplied"
	default:
		return res, fmt.Errorf("action %q: want reapply or reject", action)
	}
	if _, err := conflicts.Resolve(a.l, conflicts.Quarantined(a.wh, gw, seq, "").ID, conflicts.ResolutionAccept, by); err != nil &&
		!errors.Is(err, conflicts.ErrNotFound) && !errors.Is(err, conflicts.ErrResolved) {
		return res, err
	}
	a.rows.Queue(`UPDATE quarantine SET status = $4, decided_by = $5 WHERE wh = $1 AND gw = $2 AND seq = $3`, a.wh, gw, int64(seq), status, by)
	return res, nil
}
