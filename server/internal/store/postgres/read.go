package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Watermark implements store.Store.
func (s *Store) Watermark(ctx context.Context, wh, gw string) (uint64, error) {
	var wm int64
	err := s.pool.QueryRow(ctx, `SELECT wm FROM watermarks WHERE wh = $1 AND gw = $2`, wh, gw).Scan(&wm)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	return uint64(wm), wrap(err, "watermark of %s/%s", wh, gw)
}

// stockSQL selects the stock rows matching a store.StockQuery ($1..$6).
const stockSQL = `SELECT wh, loc, sku, lot, owner, status, on_hand FROM stock_keys
		WHERE ($1 = '' OR wh = $1) AND ($2 = '' OR loc = $2) AND ($3 = '' OR sku = $3) AND ($4 = '' OR lot = $4)
			AND ($5 = '' OR owner = $5) AND (NOT $6 OR on_hand <> 0)
		ORDER BY wh, loc, sku, lot, owner, status`

// stockGroupsSQL selects every stock row of the (wh, loc, sku) groups
// given as three arrays ($1..$3), through the primary key: one statement
// for a whole refresh of the order model, where a statement per group
// would be planned and run once each.
const stockGroupsSQL = `SELECT s.wh, s.loc, s.sku, s.lot, s.owner, s.status, s.on_hand
		FROM (SELECT DISTINCT * FROM unnest($1::text[], $2::text[], $3::text[])) AS g (wh, loc, sku)
		JOIN stock_keys s ON s.wh = g.wh COLLATE "C" AND s.loc = g.loc COLLATE "C" AND s.sku = g.sku COLLATE "C"`

func scanStockRow(r pgx.CollectableRow) (store.StockRow, error) {
	var row store.StockRow
	var status int16
	err := r.Scan(&row.Warehouse, &row.Location, &row.SKU, &row.Lot, &row.Owner, &status, &row.OnHand)
	row.Status = protocol.StockStatus(status)
	return row, err
}

// Stock implements store.Store; rows sort by warehouse, location, sku, lot, owner, status.
func (s *Store) Stock(ctx context.Context, q store.StockQuery) ([]store.StockRow, error) {
	sql := stockSQL
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := s.pool.Query(ctx, sql, q.Warehouse, q.Location, q.SKU, q.Lot, q.Owner, q.NonZero)
	if err != nil {
		return nil, wrap(err, "stock")
	}
	out, err := pgx.CollectRows(rows, scanStockRow)
	return out, wrap(err, "stock")
}

// StockEach implements store.Store: the rows of Stock, one at a time,
// from one query.
func (s *Store) StockEach(ctx context.Context, q store.StockQuery, fn func(store.StockRow) error) error {
	sql := stockSQL
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := s.pool.Query(ctx, sql, q.Warehouse, q.Location, q.SKU, q.Lot, q.Owner, q.NonZero)
	if err != nil {
		return wrap(err, "stock")
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanStockRow(rows)
		if err != nil {
			return wrap(err, "stock")
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return wrap(rows.Err(), "stock")
}

// Quarantined implements store.Store.
func (s *Store) Quarantined(ctx context.Context, wh string) ([]store.Quarantined, error) {
	rows, err := s.pool.Query(ctx, `SELECT wh, gw, seq, reason, body, status, decided_by FROM quarantine WHERE $1 = '' OR wh = $1 ORDER BY wh, gw, seq`, wh)
	if err != nil {
		return nil, wrap(err, "quarantined ops")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Quarantined, error) {
		var q store.Quarantined
		var seq int64
		var body []byte
		if err := r.Scan(&q.Warehouse, &q.Gateway, &seq, &q.Reason, &body, &q.Status, &q.By); err != nil {
			return q, err
		}
		q.Seq = uint64(seq)
		return q, protocol.Unmarshal(body, &q.Op)
	})
	return out, wrap(err, "quarantined ops")
}

// Conflicts lists the conflicts q matches, sorted by ID.
func (s *Store) Conflicts(ctx context.Context, q conflicts.Query) ([]conflicts.Conflict, error) {
	out, err := listConflicts(ctx, s.pool, q)
	return out, wrap(err, "conflicts")
}
