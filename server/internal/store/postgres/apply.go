package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

func hlcOf(v int64) protocol.HLC { return protocol.HLC(uint64(v)) }

// ApplyBatch implements store.Store: one transaction that locks the
// gateway's watermark row, then its warehouse's row, judges the batch
// against the watermark, merges the new ops, records conflicts and the
// downstream stock values, and moves the watermark.
func (s *Store) ApplyBatch(ctx context.Context, wh, gw string, b *protocol.OpBatch) (store.Result, error) {
	if b.Last > math.MaxInt64 {
		return store.Result{}, fmt.Errorf("apply %s/%s %d..%d: seq beyond 2^63 cannot be stored", wh, gw, b.First, b.Last)
	}
	res, err := s.apply(ctx, wh, gw, b)
	if err != nil {
		return store.Result{}, wrap(err, "apply %s/%s %d..%d", wh, gw, b.First, b.Last)
	}
	return res, nil
}

func (s *Store) apply(ctx context.Context, wh, gw string, b *protocol.OpBatch) (store.Result, error) {
	var res store.Result
	var wm, head int64
	// One round trip: begin, lock the watermark row then the warehouse row,
	// and read the stock keys the batch's ops touch (under those locks).
	l := newTxLedger(ctx, nil)
	var keys []ledger.Key
	for i := range b.Ops {
		op := &b.Ops[i]
		if validate(op) != nil {
			continue // quarantined below; its strings may not even be storable
		}
		for _, e := range ledger.Deltas(wh, op) {
			keys = append(keys, e.Key)
		}
		for _, e := range ledger.CountLines(wh, op) {
			keys = append(keys, e.Key)
		}
	}
	var q pgx.Batch
	q.BeginTx(pgx.TxOptions{})
	q.Queue(`INSERT INTO watermarks (wh, gw) VALUES ($1, $2) ON CONFLICT DO NOTHING`, wh, gw)
	q.Queue(`SELECT wm FROM watermarks WHERE wh = $1 AND gw = $2 FOR UPDATE`, wh, gw).QueryRow(func(r pgx.Row) error { return r.Scan(&wm) })
	q.Queue(`INSERT INTO warehouses (wh) VALUES ($1) ON CONFLICT DO NOTHING`, wh)
	q.Queue(`SELECT down_head FROM warehouses WHERE wh = $1 FOR UPDATE`, wh).QueryRow(func(r pgx.Row) error { return r.Scan(&head) })
	l.queuePrefetch(&q, wh, keys)
	tx, err := s.sendTx(ctx, &q)
	if err != nil {
		return res, err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	res.WM = uint64(wm)
	res.Verdict = protocol.Judge(res.WM, b.First, b.Last)
	if res.Verdict != protocol.Apply {
		return res, nil // the rollback releases the locks
	}
	l.tx = tx
	var w writes
	det := &conflicts.Detector{}
	var check *recTx
	for i := range b.Ops {
		op := &b.Ops[i]
		if op.Seq <= res.WM {
			continue
		}
		body, err := protocol.Marshal(op)
		if err != nil {
			return res, err
		}
		err = validate(op)
		if err == nil && s.check != nil {
			if check == nil {
				check = checkTx(ctx, tx)
			}
			err = s.check(check, wh, op)
			if retryable(err) {
				return res, err
			}
		}
		if err != nil {
			w.quar = append(w.quar, quarRow{seq: int64(op.Seq), reason: err.Error(), body: body})
			c, written, err := conflicts.Raise(l, conflicts.Quarantined(wh, gw, op.Seq, err.Error()))
			if err != nil {
				return res, err
			}
			if written {
				res.Conflicts = append(res.Conflicts, c)
			}
			res.Quarantined++
			continue
		}
		w.ops = append(w.ops, opRow{seq: int64(op.Seq), hlc: int64(op.HLC), kind: int16(op.Kind), body: body})
		ch, err := ledger.Apply(l, wh, gw, op)
		if err != nil {
			return res, fmt.Errorf("merge op %d: %w", op.Seq, err)
		}
		res.Changes = append(res.Changes, ch...)
		cs, err := det.Observe(l, l, wh, gw, op, ch)
		if err != nil {
			return res, fmt.Errorf("conflicts of op %d: %w", op.Seq, err)
		}
		res.Conflicts = append(res.Conflicts, cs...)
		res.Applied++
	}
	res.WM = b.Last

	var fb pgx.Batch
	w.queue(&fb, wh, gw)
	if err := l.queue(&fb); err != nil {
		return res, err
	}
	if err := queueStock(&fb, l, wh, head, res.Changes); err != nil {
		return res, fmt.Errorf("downstream log: %w", err)
	}
	fb.Queue(`UPDATE watermarks SET wm = $3, applied_at = now() WHERE wh = $1 AND gw = $2`, wh, gw, int64(b.Last))
	if s.notify != nil {
		// Sent by PostgreSQL at commit, and only then: the other replicas
		// hear of every committed batch even if this one dies right after.
		for _, p := range s.notify(wh, gw, &res) {
			fb.Queue(`SELECT pg_notify($1, $2)`, s.channel, string(p))
		}
	}
	if err := tx.SendBatch(ctx, &fb).Close(); err != nil {
		return res, err
	}
	return res, tx.Commit(ctx)
}

// validate is protocol.Op.Validate plus what PostgreSQL text cannot hold
// (the fields Validate leaves unchecked and this store keeps in columns).
func validate(op *protocol.Op) error {
	if err := op.Validate(); err != nil {
		return err
	}
	if op.GW != "" && (!utf8.ValidString(op.GW) || strings.IndexByte(op.GW, 0) >= 0) {
		return fmt.Errorf("op %d (%s): gw is not UTF-8 or contains a NUL byte", op.Seq, op.Kind)
	}
	return nil
}

type opRow struct {
	seq, hlc int64
	kind     int16
	body     []byte
}

type quarRow struct {
	seq    int64
	reason string
	body   []byte
}

// writes are the op log rows of a batch.
type writes struct {
	ops  []opRow
	quar []quarRow
}

func (w *writes) queue(b *pgx.Batch, wh, gw string) {
	if len(w.ops) > 0 {
		seqs, hlcs, kinds, bodies := make([]int64, len(w.ops)), make([]int64, len(w.ops)), make([]int16, len(w.ops)), make([][]byte, len(w.ops))
		for i, o := range w.ops {
			seqs[i], hlcs[i], kinds[i], bodies[i] = o.seq, o.hlc, o.kind, o.body
		}
		b.Queue(`INSERT INTO ops (wh, gw, seq, hlc, kind, body)
			SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[], $5::smallint[], $6::bytea[])`, wh, gw, seqs, hlcs, kinds, bodies)
	}
	for _, q := range w.quar {
		b.Queue(`INSERT INTO quarantine (wh, gw, seq, reason, body) VALUES ($1, $2, $3, $4, $5)`, wh, gw, q.seq, q.reason, q.body)
	}
}

// queue queues the writes buffered in l; it is called once, at the end
// of the transaction.
func (l *txLedger) queue(b *pgx.Batch) error {
	type keyRows struct {
		wh, loc, sku, lot, gw []string
		hlc, seq, a, c        []int64
	}
	var kr keyRows
	add := func(r *keyRows, k ledger.Key, o ledger.Order, a, c int64) {
		r.wh, r.loc, r.sku, r.lot = append(r.wh, k.WH), append(r.loc, k.Location), append(r.sku, k.SKU), append(r.lot, k.Lot)
		r.hlc, r.gw, r.seq = append(r.hlc, int64(o.HLC)), append(r.gw, o.GW), append(r.seq, int64(o.Seq))
		r.a, r.c = append(r.a, a), append(r.c, c)
	}
	for k, e := range l.keys {
		if e.dirty {
			add(&kr, k, e.st.Count, e.st.CountQty, e.st.Sum)
			e.dirty = false
		}
	}
	if len(kr.wh) > 0 {
		b.Queue(`INSERT INTO stock_keys AS k (wh, loc, sku, lot, count_hlc, count_gw, count_seq, count_qty, sum)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[])
			ON CONFLICT (wh, loc, sku, lot) DO UPDATE SET count_hlc = excluded.count_hlc, count_gw = excluded.count_gw,
				count_seq = excluded.count_seq, count_qty = excluded.count_qty, sum = excluded.sum`,
			kr.wh, kr.loc, kr.sku, kr.lot, kr.hlc, kr.gw, kr.seq, kr.a, kr.c)
	}
	var dr keyRows
	for k, ds := range l.deltas {
		for _, d := range ds {
			add(&dr, k, d.Order, d.Qty, 0)
		}
	}
	if len(dr.wh) > 0 {
		b.Queue(`INSERT INTO deltas AS d (wh, loc, sku, lot, hlc, gw, seq, qty)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[])
			ON CONFLICT (wh, loc, sku, lot, hlc, gw, seq) DO UPDATE SET qty = d.qty + excluded.qty`,
			dr.wh, dr.loc, dr.sku, dr.lot, dr.hlc, dr.gw, dr.seq, dr.a)
	}
	var cr keyRows
	for k, cs := range l.countLines {
		for _, c := range cs {
			add(&cr, k, c.Order, c.Qty, 0)
		}
	}
	if len(cr.wh) > 0 {
		b.Queue(`INSERT INTO count_lines (wh, loc, sku, lot, hlc, gw, seq, qty)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[])
			ON CONFLICT (wh, loc, sku, lot, hlc, gw, seq) DO UPDATE SET qty = excluded.qty`,
			cr.wh, cr.loc, cr.sku, cr.lot, cr.hlc, cr.gw, cr.seq, cr.a)
	}
	for id, e := range l.locs {
		if e.dirty {
			b.Queue(`INSERT INTO loc_counts (wh, loc, hlc, gw, seq) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (wh, loc) DO UPDATE SET hlc = excluded.hlc, gw = excluded.gw, seq = excluded.seq`,
				id.wh, id.loc, int64(e.o.HLC), e.o.GW, int64(e.o.Seq))
			e.dirty = false
		}
	}
	for id, os := range l.locLog {
		for _, o := range os {
			b.Queue(`INSERT INTO loc_count_log (wh, loc, hlc, gw, seq) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
				id.wh, id.loc, int64(o.HLC), o.GW, int64(o.Seq))
		}
	}
	for id, ps := range l.picks {
		for _, p := range ps {
			b.Queue(`INSERT INTO line_picks (wh, ord, line, hlc, gw, seq, ref_wh, qty) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (wh, ord, line, hlc, gw, seq) DO UPDATE SET ref_wh = excluded.ref_wh, qty = excluded.qty`,
				id.wh, []byte(id.order), int64(id.line), int64(p.Ref.HLC), p.Ref.GW, int64(p.Ref.Seq), p.Ref.WH, p.Qty)
		}
	}
	for id, e := range l.totals {
		if e.dirty {
			b.Queue(`INSERT INTO line_totals (wh, ord, line, picked) VALUES ($1, $2, $3, $4)
				ON CONFLICT (wh, ord, line) DO UPDATE SET picked = excluded.picked`, id.wh, []byte(id.order), int64(id.line), e.v)
			e.dirty = false
		}
	}
	return l.queueConflicts(b)
}

// queueConflicts queues the buffered conflicts and marks them written.
func (l *txLedger) queueConflicts(b *pgx.Batch) error {
	for id, e := range l.confs {
		if !e.dirty {
			continue
		}
		body, err := json.Marshal(e.c)
		if err != nil {
			return fmt.Errorf("encode conflict %s: %w", id, err)
		}
		b.Queue(`INSERT INTO conflicts (id, wh, kind, status, location, sku, body) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO UPDATE SET wh = excluded.wh, kind = excluded.kind, status = excluded.status,
				location = excluded.location, sku = excluded.sku, body = excluded.body`,
			id, e.c.Warehouse, string(e.c.Kind), string(e.c.Status), e.c.Location, e.c.SKU, body)
		e.dirty = false
	}
	return nil
}

// queueStock queues the downstream entries carrying the current value of
// every key in changes (compacted per key), numbered after head, and the
// new head.
func queueStock(b *pgx.Batch, l *txLedger, wh string, head int64, changes []ledger.Change) error {
	seen := map[ledger.Key]bool{}
	var seqs []int64
	var items, bodies [][]byte
	for _, c := range changes {
		if seen[c.Key] {
			continue
		}
		seen[c.Key] = true
		ks, _, err := l.GetKey(c.Key)
		if err != nil {
			return err
		}
		raw, err := protocol.Marshal(protocol.StockValue{Location: c.Key.Location, SKU: c.Key.SKU, Lot: c.Key.Lot, OnHand: ks.OnHand()})
		if err != nil {
			return err
		}
		head++
		seqs = append(seqs, head)
		items = append(items, []byte(stockItemKey(c.Key)))
		bodies = append(bodies, raw)
	}
	if len(seqs) == 0 {
		return nil
	}
	b.Queue(`INSERT INTO down_log (wh, seq, kind, item_key, target, body)
		SELECT $1, s, $2, i, '', body FROM unnest($3::bigint[], $4::bytea[], $5::bytea[]) AS u(s, i, body)
		ON CONFLICT (wh, kind, item_key) DO UPDATE SET seq = excluded.seq, target = excluded.target, body = excluded.body`,
		wh, int16(protocol.DownStock), seqs, items, bodies)
	b.Queue(`UPDATE warehouses SET down_head = $2 WHERE wh = $1`, wh, head)
	return nil
}

// stockItemKey is a stock key's item key in the downstream log (the same
// as the Badger store's).
func stockItemKey(k ledger.Key) string { return k.Location + "\x00" + k.SKU + "\x00" + k.Lot }
