package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// historySQL selects, from one snapshot, every event behind a stock key
// with the op behind it: its deltas, what counts counted for it, and the
// location counts that did not list it (which observed 0).
const historySQL = `WITH ev AS (
		SELECT hlc, gw, seq, qty, false AS count FROM deltas WHERE ` + keyWhere + `
		UNION ALL
		SELECT hlc, gw, seq, qty, true FROM count_lines WHERE ` + keyWhere + `
		UNION ALL
		SELECT l.hlc, l.gw, l.seq, 0, true FROM loc_count_log l WHERE l.wh = $1 AND l.loc = $2 AND $6 = 0 AND NOT EXISTS (
			SELECT 1 FROM count_lines c WHERE c.wh = $1 AND c.loc = $2 AND c.sku = $3 AND c.lot = $4
				AND c.owner = $5 AND c.status = $6 AND c.hlc = l.hlc AND c.gw = l.gw AND c.seq = l.seq))
	SELECT ev.hlc, ev.gw, ev.seq, ev.qty, ev.count, o.body
	FROM ev LEFT JOIN ops o ON o.wh = $1 AND o.gw = ev.gw AND o.seq = ev.seq
	ORDER BY ev.hlc, ev.gw, ev.seq`

// History implements store.Actions: it explains a key's on-hand op by op,
// in merge order, with the running on-hand after each.
func (s *Store) History(ctx context.Context, k ledger.Key) ([]store.HistoryEntry, error) {
	type event struct {
		o     ledger.Order
		qty   int64
		count bool
		body  []byte
	}
	rows, err := s.pool.Query(ctx, historySQL, keyArgs(k)...)
	if err != nil {
		return nil, wrap(err, "history of %s", k)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (event, error) {
		var e event
		var hlc, seq int64
		err := r.Scan(&hlc, &e.o.GW, &seq, &e.qty, &e.count, &e.body)
		e.o.HLC, e.o.Seq = hlcOf(hlc), uint64(seq)
		return e, err
	})
	if err != nil {
		return nil, wrap(err, "history of %s", k)
	}
	slices.SortStableFunc(evs, func(a, b event) int { return a.o.Compare(b.o) })
	out := make([]store.HistoryEntry, 0, len(evs))
	var onHand int64
	for _, e := range evs {
		if e.count {
			onHand = e.qty
		} else {
			onHand += e.qty
		}
		h := store.HistoryEntry{Gateway: e.o.GW, Seq: e.o.Seq, HLC: e.o.HLC, At: e.o.HLC.Time().Format("2006-01-02T15:04:05.000Z07:00"),
			Qty: e.qty, Count: e.count, OnHand: onHand}
		if e.body != nil {
			var op protocol.Op
			if err := protocol.Unmarshal(e.body, &op); err != nil {
				return nil, fmt.Errorf("history of %s: op %s/%d: %w", k, e.o.GW, e.o.Seq, err)
			}
			h.Describe(op)
		}
		out = append(out, h)
	}
	return out, nil
}

// GetOrder implements store.Actions: it returns an order with each line's
// picked total, from one snapshot.
func (s *Store) GetOrder(ctx context.Context, wh, id string) (store.Order, map[uint32]int64, error) {
	var o store.Order
	rows, err := s.pool.Query(ctx, `SELECT o.body, t.line, t.picked FROM orders o
		LEFT JOIN line_totals t ON t.wh = o.wh AND t.ord = o.id WHERE o.wh = $1 AND o.id = $2`, wh, []byte(id))
	if err != nil {
		return o, nil, wrap(err, "order %s/%s", wh, id)
	}
	var body []byte
	totals := map[uint32]int64{}
	for rows.Next() {
		var line, picked *int64
		if err := rows.Scan(&body, &line, &picked); err != nil {
			rows.Close()
			return o, nil, wrap(err, "order %s/%s", wh, id)
		}
		if line != nil && picked != nil {
			totals[uint32(*line)] = *picked
		}
	}
	if err := rows.Err(); err != nil {
		return o, nil, wrap(err, "order %s/%s", wh, id)
	}
	if body == nil {
		return o, nil, fmt.Errorf("order %s/%s: %w", wh, id, store.ErrNotFound)
	}
	if err := protocol.Unmarshal(body, &o); err != nil {
		return o, nil, fmt.Errorf("order %s/%s: %w", wh, id, err)
	}
	picked := map[uint32]int64{}
	for _, l := range o.Lines {
		picked[l.Line] = totals[l.Line]
	}
	return o, picked, nil
}

// Tasks implements store.Actions: it lists the tasks of a warehouse, by ID.
func (s *Store) Tasks(ctx context.Context, wh string) ([]protocol.Task, error) {
	rows, err := s.pool.Query(ctx, `SELECT body FROM tasks WHERE wh = $1 ORDER BY id`, wh)
	if err != nil {
		return nil, wrap(err, "tasks of %s", wh)
	}
	defer rows.Close()
	var out []protocol.Task
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, wrap(err, "tasks of %s", wh)
		}
		var t protocol.Task
		if err := protocol.Unmarshal(body, &t); err != nil {
			return nil, fmt.Errorf("tasks of %s: %w", wh, err)
		}
		out = append(out, t)
	}
	return out, wrap(rows.Err(), "tasks of %s", wh)
}
