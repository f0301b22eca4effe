package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// txLedger is ledger.Store and conflicts.Store over one ApplyBatch
// transaction. Writes are buffered and sent in one pipeline by flush;
// reads see them — point reads from the buffers, range reads by merging the
// database's rows with the buffered ones. Caching is sound because the
// transaction holds its warehouse's lock: nobody else changes these rows
// before it commits.
//
// A key without state when the transaction began has no deltas in the
// database either (deltas and key state are written together), so SumAfter
// on it needs no query.
type txLedger struct {
	ctx context.Context
	tx  pgx.Tx

	keys       map[ledger.Key]*keyEntry
	locs       map[locID]*locEntry
	deltas     map[ledger.Key][]conflicts.Delta
	countLines map[ledger.Key][]conflicts.CountLine
	locLog     map[locID][]ledger.Order
	confs      map[string]*confEntry
	picks      map[lineID][]conflicts.LinePick
	totals     map[lineID]*totalEntry
	skew       map[string]time.Duration
}

type keyEntry struct {
	st     ledger.KeyState
	exists bool // the key has state, in the database or written here
	inDB   bool // the key had state in the database when loaded
	dirty  bool
}

type locID struct{ wh, loc string }

type locEntry struct {
	o      ledger.Order
	exists bool
	dirty  bool
}

type confEntry struct {
	c      conflicts.Conflict
	exists bool
	dirty  bool
}

type lineID struct {
	wh, order string
	line      uint32
}

type totalEntry struct {
	v     int64
	dirty bool
}

var (
	_ ledger.Store    = (*txLedger)(nil)
	_ conflicts.Store = (*txLedger)(nil)
)

func newTxLedger(ctx context.Context, tx pgx.Tx) *txLedger { // tx may be set later
	return &txLedger{
		ctx: ctx, tx: tx,
		keys: map[ledger.Key]*keyEntry{}, locs: map[locID]*locEntry{},
		deltas: map[ledger.Key][]conflicts.Delta{}, countLines: map[ledger.Key][]conflicts.CountLine{},
		locLog: map[locID][]ledger.Order{}, confs: map[string]*confEntry{},
		picks: map[lineID][]conflicts.LinePick{}, totals: map[lineID]*totalEntry{}, skew: map[string]time.Duration{},
	}
}

const keyCols = `sku, lot, owner, status, count_hlc, count_gw, count_seq, count_qty, sum`

// keyWhere selects one stock key's rows, with keyArgs as $1..$6.
const keyWhere = `wh = $1 AND loc = $2 AND sku = $3 AND lot = $4 AND owner = $5 AND status = $6`

// keyArgs are the query arguments of keyWhere.
func keyArgs(k ledger.Key) []any {
	return []any{k.WH, k.Location, k.SKU, k.Lot, k.Owner, int16(k.Status)}
}

// prefixed scans one column into first, then the rest of the row.
type prefixed struct {
	r     pgx.Row
	first any
}

func (p prefixed) Scan(dest ...any) error { return p.r.Scan(append([]any{p.first}, dest...)...) }

func scanKey(r pgx.Row, k *ledger.Key, s *ledger.KeyState) error {
	var hlc, seq int64
	var status int16
	if err := r.Scan(&k.SKU, &k.Lot, &k.Owner, &status, &hlc, &s.Count.GW, &seq, &s.CountQty, &s.Sum); err != nil {
		return err
	}
	k.Status = protocol.StockStatus(status)
	s.Count.HLC, s.Count.Seq = hlcOf(hlc), uint64(seq)
	return nil
}

// queuePrefetch queues on b the queries that load the state of the given
// keys of wh and the location counts of their locations into l (when b's
// results are read).
func (l *txLedger) queuePrefetch(b *pgx.Batch, wh string, keys []ledger.Key) {
	if len(keys) == 0 {
		return
	}
	var locs, skus, lots, owners []string
	var statuses []int16
	seenLoc := map[string]bool{}
	var locList []string
	for _, k := range keys {
		if _, ok := l.keys[k]; ok {
			continue
		}
		l.keys[k] = &keyEntry{} // absent unless the query finds it
		locs, skus, lots = append(locs, k.Location), append(skus, k.SKU), append(lots, k.Lot)
		owners, statuses = append(owners, k.Owner), append(statuses, int16(k.Status))
		if !seenLoc[k.Location] {
			seenLoc[k.Location] = true
			locList = append(locList, k.Location)
		}
	}
	b.Queue(`SELECT loc, `+keyCols+` FROM stock_keys
		WHERE wh = $1 AND (loc, sku, lot, owner, status) IN (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[]))`,
		wh, locs, skus, lots, owners, statuses).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			k := ledger.Key{WH: wh}
			var s ledger.KeyState
			var loc string
			if err := scanKey(prefixed{rows, &loc}, &k, &s); err != nil {
				return err
			}
			k.Location = loc
			l.keys[k] = &keyEntry{st: s, exists: true, inDB: true}
		}
		return rows.Err()
	})
	for _, loc := range locList {
		l.locs[locID{wh, loc}] = &locEntry{}
	}
	b.Queue(`SELECT loc, hlc, gw, seq FROM loc_counts WHERE wh = $1 AND loc = ANY($2::text[])`, wh, locList).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var loc string
			var o ledger.Order
			var hlc, seq int64
			if err := rows.Scan(&loc, &hlc, &o.GW, &seq); err != nil {
				return err
			}
			o.HLC, o.Seq = hlcOf(hlc), uint64(seq)
			l.locs[locID{wh, loc}] = &locEntry{o: o, exists: true}
		}
		return rows.Err()
	})
}

func (l *txLedger) key(k ledger.Key) (*keyEntry, error) {
	if e, ok := l.keys[k]; ok {
		return e, nil
	}
	e := &keyEntry{}
	var got ledger.Key
	err := scanKey(l.tx.QueryRow(l.ctx, `SELECT `+keyCols+` FROM stock_keys WHERE wh = $1 AND loc = $2 AND sku = $3 AND lot = $4 AND owner = $5 AND status = $6`,
		keyArgs(k)...), &got, &e.st)
	switch {
	case err == pgx.ErrNoRows:
		e.st = ledger.KeyState{}
	case err != nil:
		return nil, err
	default:
		e.exists, e.inDB = true, true
	}
	l.keys[k] = e
	return e, nil
}

// GetKey implements ledger.Store.
func (l *txLedger) GetKey(k ledger.Key) (ledger.KeyState, bool, error) {
	e, err := l.key(k)
	if err != nil {
		return ledger.KeyState{}, false, err
	}
	return e.st, e.exists, nil
}

// PutKey implements ledger.Store.
func (l *txLedger) PutKey(k ledger.Key, s ledger.KeyState) error {
	e, err := l.key(k)
	if err != nil {
		return err
	}
	e.st, e.exists, e.dirty = s, true, true
	return nil
}

// GetLocCount implements ledger.Store.
func (l *txLedger) GetLocCount(wh, loc string) (ledger.Order, bool, error) {
	id := locID{wh, loc}
	if e, ok := l.locs[id]; ok {
		return e.o, e.exists, nil
	}
	e := &locEntry{}
	var hlc, seq int64
	err := l.tx.QueryRow(l.ctx, `SELECT hlc, gw, seq FROM loc_counts WHERE wh = $1 AND loc = $2`, wh, loc).Scan(&hlc, &e.o.GW, &seq)
	switch {
	case err == pgx.ErrNoRows:
		e.o = ledger.Order{}
	case err != nil:
		return ledger.Order{}, false, err
	default:
		e.o.HLC, e.o.Seq, e.exists = hlcOf(hlc), uint64(seq), true
	}
	l.locs[id] = e
	return e.o, e.exists, nil
}

// PutLocCount implements ledger.Store.
func (l *txLedger) PutLocCount(wh, loc string, o ledger.Order) error {
	l.locs[locID{wh, loc}] = &locEntry{o: o, exists: true, dirty: true}
	return nil
}

// KeysAt implements ledger.Store: the keys of the location in the
// database (whose state it caches) and those created here.
func (l *txLedger) KeysAt(wh, loc string) ([]ledger.Key, error) {
	rows, err := l.tx.Query(l.ctx, `SELECT `+keyCols+` FROM stock_keys WHERE wh = $1 AND loc = $2`, wh, loc)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		k := ledger.Key{WH: wh, Location: loc}
		var s ledger.KeyState
		if err := scanKey(rows, &k, &s); err != nil {
			rows.Close()
			return nil, err
		}
		if _, ok := l.keys[k]; !ok {
			l.keys[k] = &keyEntry{st: s, exists: true, inDB: true}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []ledger.Key
	for k, e := range l.keys {
		if e.exists && k.WH == wh && k.Location == loc {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, ledger.CompareKeys)
	return out, nil
}

// AddDelta implements ledger.Store. The same key and order twice add up.
func (l *txLedger) AddDelta(k ledger.Key, o ledger.Order, qty int64) error {
	ds := l.deltas[k]
	for i := range ds {
		if ds[i].Order == o {
			ds[i].Qty += qty
			return nil
		}
	}
	l.deltas[k] = append(ds, conflicts.Delta{Order: o, Qty: qty})
	return nil
}

// SumAfter implements ledger.Store.
func (l *txLedger) SumAfter(k ledger.Key, o ledger.Order) (int64, error) {
	var sum int64
	for _, d := range l.deltas[k] {
		if d.Order.Compare(o) > 0 {
			sum += d.Qty
		}
	}
	e, err := l.key(k)
	if err != nil || !e.inDB {
		return sum, err
	}
	var db int64
	err = l.tx.QueryRow(l.ctx, `SELECT coalesce(sum(qty), 0)::bigint FROM deltas
		WHERE wh = $1 AND loc = $2 AND sku = $3 AND lot = $4 AND owner = $5 AND status = $6 AND (hlc, gw, seq) > ($7, $8, $9)`,
		append(keyArgs(k), int64(o.HLC), o.GW, int64(o.Seq))...).Scan(&db)
	return sum + db, err
}

// orderRange appends to where the SQL and arguments that select r's orders
// in the columns (hlc, gw, seq), sorted and limited as r says.
func orderRange(where string, args []any, r conflicts.Range) (string, []any) {
	n := len(args)
	where += fmt.Sprintf(" AND (hlc, gw, seq) >= ($%d, $%d, $%d)", n+1, n+2, n+3)
	args = append(args, int64(r.From.HLC), r.From.GW, int64(r.From.Seq))
	if !r.To.IsZero() {
		n = len(args)
		where += fmt.Sprintf(" AND (hlc, gw, seq) < ($%d, $%d, $%d)", n+1, n+2, n+3)
		args = append(args, int64(r.To.HLC), r.To.GW, int64(r.To.Seq))
	}
	if r.Desc {
		where += " ORDER BY hlc DESC, gw DESC, seq DESC"
	} else {
		where += " ORDER BY hlc, gw, seq"
	}
	if r.Limit > 0 {
		where += fmt.Sprintf(" LIMIT %d", r.Limit)
	}
	return where, args
}

// mergeRange merges the database's rows (already in r) with the buffered
// ones, keeping r's bounds, direction and limit.
func mergeRange[T any](db, pending []T, order func(T) ledger.Order, r conflicts.Range) []T {
	out := db
	for _, p := range pending {
		if r.Contains(order(p)) {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b T) int {
		if r.Desc {
			return order(b).Compare(order(a))
		}
		return order(a).Compare(order(b))
	})
	if r.Limit > 0 && len(out) > r.Limit {
		out = out[:r.Limit]
	}
	return out
}

// queryOrders runs a range query whose rows are (hlc, gw, seq[, qty]).
func (l *txLedger) queryOrders(sql string, args []any, withQty bool, fn func(o ledger.Order, qty int64)) error {
	rows, err := l.tx.Query(l.ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var hlc, seq, qty int64
		var o ledger.Order
		dest := []any{&hlc, &o.GW, &seq}
		if withQty {
			dest = append(dest, &qty)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		o.HLC, o.Seq = hlcOf(hlc), uint64(seq)
		fn(o, qty)
	}
	return rows.Err()
}

// Deltas implements conflicts.Store.
func (l *txLedger) Deltas(k ledger.Key, r conflicts.Range) ([]conflicts.Delta, error) {
	var db []conflicts.Delta
	if e, err := l.key(k); err != nil {
		return nil, err
	} else if e.inDB {
		sql, args := orderRange(`SELECT hlc, gw, seq, qty FROM deltas WHERE `+keyWhere, keyArgs(k), r)
		if err := l.queryOrders(sql, args, true, func(o ledger.Order, q int64) { db = append(db, conflicts.Delta{Order: o, Qty: q}) }); err != nil {
			return nil, err
		}
	}
	return mergeRange(db, l.deltas[k], func(d conflicts.Delta) ledger.Order { return d.Order }, r), nil
}

// PutCountLine implements conflicts.Store.
func (l *txLedger) PutCountLine(k ledger.Key, o ledger.Order, qty int64) error {
	cs := l.countLines[k]
	for i := range cs {
		if cs[i].Order == o {
			cs[i].Qty = qty
			return nil
		}
	}
	l.countLines[k] = append(cs, conflicts.CountLine{Order: o, Qty: qty})
	return nil
}

// CountLines implements conflicts.Store.
func (l *txLedger) CountLines(k ledger.Key, r conflicts.Range) ([]conflicts.CountLine, error) {
	var db []conflicts.CountLine
	sql, args := orderRange(`SELECT hlc, gw, seq, qty FROM count_lines WHERE `+keyWhere, keyArgs(k), r)
	if err := l.queryOrders(sql, args, true, func(o ledger.Order, q int64) { db = append(db, conflicts.CountLine{Order: o, Qty: q}) }); err != nil {
		return nil, err
	}
	return mergeRange(db, l.countLines[k], func(c conflicts.CountLine) ledger.Order { return c.Order }, r), nil
}

// AddLocCount implements conflicts.Store.
func (l *txLedger) AddLocCount(wh, loc string, o ledger.Order) error {
	id := locID{wh, loc}
	if !slices.Contains(l.locLog[id], o) {
		l.locLog[id] = append(l.locLog[id], o)
	}
	return nil
}

// LocCounts implements conflicts.Store.
func (l *txLedger) LocCounts(wh, loc string, r conflicts.Range) ([]ledger.Order, error) {
	var db []ledger.Order
	sql, args := orderRange(`SELECT hlc, gw, seq FROM loc_count_log WHERE wh = $1 AND loc = $2`, []any{wh, loc}, r)
	if err := l.queryOrders(sql, args, false, func(o ledger.Order, _ int64) { db = append(db, o) }); err != nil {
		return nil, err
	}
	return mergeRange(db, l.locLog[locID{wh, loc}], func(o ledger.Order) ledger.Order { return o }, r), nil
}

// GetConflict implements conflicts.Store.
func (l *txLedger) GetConflict(id string) (conflicts.Conflict, bool, error) {
	if e, ok := l.confs[id]; ok {
		return e.c, e.exists, nil
	}
	e := &confEntry{}
	var body []byte
	err := l.tx.QueryRow(l.ctx, `SELECT body FROM conflicts WHERE id = $1`, id).Scan(&body)
	switch {
	case err == pgx.ErrNoRows:
	case err != nil:
		return conflicts.Conflict{}, false, err
	default:
		if err := json.Unmarshal(body, &e.c); err != nil {
			return conflicts.Conflict{}, false, fmt.Errorf("conflict %s: %w", id, err)
		}
		e.exists = true
	}
	l.confs[id] = e
	return e.c, e.exists, nil
}

// PutConflict implements conflicts.Store.
func (l *txLedger) PutConflict(c conflicts.Conflict) error {
	l.confs[c.ID] = &confEntry{c: c, exists: true, dirty: true}
	return nil
}

// ListConflicts implements conflicts.Store: it writes the buffered
// conflicts, then queries.
func (l *txLedger) ListConflicts(q conflicts.Query) ([]conflicts.Conflict, error) {
	var b pgx.Batch
	if err := l.queueConflicts(&b); err != nil {
		return nil, err
	}
	if err := l.tx.SendBatch(l.ctx, &b).Close(); err != nil {
		return nil, err
	}
	return listConflicts(l.ctx, l.tx, q)
}

func listConflicts(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, q conflicts.Query) ([]conflicts.Conflict, error) {
	sql := `SELECT body FROM conflicts WHERE ($1 = '' OR wh = $1) AND ($2 = '' OR kind = $2) AND ($3 = '' OR status = $3)
		AND ($4 = '' OR location = $4) AND ($5 = '' OR sku = $5) ORDER BY id`
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := db.Query(ctx, sql, q.Warehouse, string(q.Kind), string(q.Status), q.Location, q.SKU)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []conflicts.Conflict
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var c conflicts.Conflict
		if err := json.Unmarshal(body, &c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AddLinePick implements conflicts.Store.
func (l *txLedger) AddLinePick(wh, order string, line uint32, p conflicts.LinePick) error {
	id := lineID{wh, order, line}
	tot, err := l.LinePicked(wh, order, line)
	if err != nil {
		return err
	}
	ps := l.picks[id]
	replaced := false
	for i := range ps {
		if ps[i].Ref.Order() == p.Ref.Order() {
			ps[i], replaced = p, true
		}
	}
	if !replaced {
		l.picks[id] = append(ps, p)
	}
	l.totals[id] = &totalEntry{v: tot + p.Qty, dirty: true}
	return nil
}

// LinePicked implements conflicts.Store.
func (l *txLedger) LinePicked(wh, order string, line uint32) (int64, error) {
	id := lineID{wh, order, line}
	if e, ok := l.totals[id]; ok {
		return e.v, nil
	}
	var v int64
	err := l.tx.QueryRow(l.ctx, `SELECT picked FROM line_totals WHERE wh = $1 AND ord = $2 AND line = $3`, wh, []byte(order), int64(line)).Scan(&v)
	if err != nil && err != pgx.ErrNoRows {
		return 0, err
	}
	l.totals[id] = &totalEntry{v: v}
	return v, nil
}

// LinePicks implements conflicts.Store.
func (l *txLedger) LinePicks(wh, order string, line uint32) ([]conflicts.LinePick, error) {
	rows, err := l.tx.Query(l.ctx, `SELECT hlc, gw, seq, ref_wh, qty FROM line_picks WHERE wh = $1 AND ord = $2 AND line = $3`,
		wh, []byte(order), int64(line))
	if err != nil {
		return nil, err
	}
	var out []conflicts.LinePick
	for rows.Next() {
		var hlc, seq int64
		var p conflicts.LinePick
		if err := rows.Scan(&hlc, &p.Ref.GW, &seq, &p.Ref.WH, &p.Qty); err != nil {
			rows.Close()
			return nil, err
		}
		p.Ref.HLC, p.Ref.Seq = hlcOf(hlc), uint64(seq)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return mergeRange(out, l.picks[lineID{wh, order, line}], func(p conflicts.LinePick) ledger.Order { return p.Ref.Order() }, conflicts.Range{}), nil
}

// OrderLineQty implements conflicts.Store.
func (l *txLedger) OrderLineQty(wh, order string, line uint32) (int64, bool, error) {
	var v int64
	err := l.tx.QueryRow(l.ctx, `SELECT qty FROM order_lines WHERE wh = $1 AND ord = $2 AND line = $3`, wh, []byte(order), int64(line)).Scan(&v)
	if err == pgx.ErrNoRows {
		return 0, false, nil
	}
	return v, err == nil, err
}

// SkewWindow implements conflicts.Store.
func (l *txLedger) SkewWindow(wh string) (time.Duration, error) {
	if d, ok := l.skew[wh]; ok {
		return d, nil
	}
	var ms int64
	err := l.tx.QueryRow(l.ctx, `SELECT skew_window_ms FROM settings WHERE wh = $1`, wh).Scan(&ms)
	if err != nil && err != pgx.ErrNoRows {
		return 0, err
	}
	l.skew[wh] = time.Duration(ms) * time.Millisecond
	return l.skew[wh], nil
}
