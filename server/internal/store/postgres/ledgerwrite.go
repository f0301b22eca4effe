package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// queue queues the writes buffered in l; it is called once, at the end
// of the transaction.
func (l *txLedger) queue(b *pgx.Batch) error {
	type keyRows struct {
		wh, loc, sku, lot, owner, gw []string
		status                       []int16
		hlc, seq, a, c               []int64
	}
	var kr keyRows
	add := func(r *keyRows, k ledger.Key, o ledger.Order, a, c int64) {
		r.wh, r.loc, r.sku, r.lot = append(r.wh, k.WH), append(r.loc, k.Location), append(r.sku, k.SKU), append(r.lot, k.Lot)
		r.owner, r.status = append(r.owner, k.Owner), append(r.status, int16(k.Status))
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
		b.Queue(`INSERT INTO stock_keys AS k (wh, loc, sku, lot, owner, status, count_hlc, count_gw, count_seq, count_qty, sum)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::bigint[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[])
			ON CONFLICT (wh, loc, sku, lot, owner, status) DO UPDATE SET count_hlc = excluded.count_hlc, count_gw = excluded.count_gw,
				count_seq = excluded.count_seq, count_qty = excluded.count_qty, sum = excluded.sum`,
			kr.wh, kr.loc, kr.sku, kr.lot, kr.owner, kr.status, kr.hlc, kr.gw, kr.seq, kr.a, kr.c)
	}
	var dr keyRows
	for k, ds := range l.deltas {
		for _, d := range ds {
			add(&dr, k, d.Order, d.Qty, 0)
		}
	}
	if len(dr.wh) > 0 {
		b.Queue(`INSERT INTO deltas AS d (wh, loc, sku, lot, owner, status, hlc, gw, seq, qty)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::bigint[], $8::text[], $9::bigint[], $10::bigint[])
			ON CONFLICT (wh, loc, sku, lot, owner, status, hlc, gw, seq) DO UPDATE SET qty = d.qty + excluded.qty`,
			dr.wh, dr.loc, dr.sku, dr.lot, dr.owner, dr.status, dr.hlc, dr.gw, dr.seq, dr.a)
	}
	var cr keyRows
	for k, cs := range l.countLines {
		for _, c := range cs {
			add(&cr, k, c.Order, c.Qty, 0)
		}
	}
	if len(cr.wh) > 0 {
		b.Queue(`INSERT INTO count_lines (wh, loc, sku, lot, owner, status, hlc, gw, seq, qty)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::bigint[], $8::text[], $9::bigint[], $10::bigint[])
			ON CONFLICT (wh, loc, sku, lot, owner, status, hlc, gw, seq) DO UPDATE SET qty = excluded.qty`,
			cr.wh, cr.loc, cr.sku, cr.lot, cr.owner, cr.status, cr.hlc, cr.gw, cr.seq, cr.a)
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
