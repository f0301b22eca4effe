package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/apply"
)

// store.Records over PostgreSQL: the records of master data, routing,
// orders, alerts and webhooks live in table kv, and a record transaction
// may also append downstream items, raise conflicts, write tasks, orders
// and settings in the same database transaction.
//
// Isolation. Record transactions run at READ COMMITTED, serialised where it
// matters by locks rather than by snapshot checks (a SERIALIZABLE
// transaction that then locks a warehouse row busy with ingest fails with
// a serialization error almost every time under load):
//
//   - Before its first read or write of a key namespace (the key up to its
//     first '/', e.g. "al" for "al/open/…"), an Update takes a transaction
//     advisory lock on that namespace. Record writers of one namespace are
//     therefore serial across every replica, and as each statement at READ
//     COMMITTED sees everything committed before it, a read-modify-write
//     (an "armed" flag, a sequence lease, an idempotency key) behaves as
//     under Badger's serializable transactions.
//   - Before writing to the ledger side (downstream log, conflicts, tasks,
//     orders, settings) it locks the warehouse's row, as ApplyBatch does;
//     so those writes and the merges of the warehouse are serial.
//
// Two Updates that take the same locks in different orders deadlock;
// PostgreSQL detects it, one fails with 40P01 and Update runs it again,
// like Badger's retry on a conflict. Ingest takes no namespace lock (its
// master-data check only reads), so it never waits for record writers
// beyond a warehouse row.
//
// View runs at REPEATABLE READ, READ ONLY: one snapshot.

var _ store.Records = (*Store)(nil)

// recordTimeout bounds one record transaction (the Records interface has
// no context: its callers are API handlers and background loops that
// expect an answer in seconds).
const recordTimeout = 30 * time.Second

// scanChunk is how many rows Scan reads per query: fn may use the same
// transaction, which cannot run a query while rows are open.
const scanChunk = 256

// recTx is a store.Tx over one PostgreSQL transaction.
type recTx struct {
	ctx      context.Context
	tx       pgx.Tx
	l        *txLedger
	write    bool                // an Update (else a View or the apply's check)
	ns       map[string]bool     // namespaces locked
	locked   map[string]*whState // warehouses whose row is locked
	order    []string            // locked warehouses, in order
	memo     map[string]memoVal  // point reads of a read-only check
	readOnly bool
}

type whState struct {
	head int64
	down []downEntry
}

type memoVal struct {
	v  []byte
	ok bool
}

// Update implements store.Records.
func (s *Store) Update(f func(store.Tx) error) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		err = s.recordTx(pgx.ReadCommitted, pgx.ReadWrite, f)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 2 * time.Millisecond)
	}
	return err
}

// View implements store.Records.
func (s *Store) View(f func(store.Tx) error) error {
	return s.recordTx(pgx.RepeatableRead, pgx.ReadOnly, f)
}

func (s *Store) recordTx(iso pgx.TxIsoLevel, mode pgx.TxAccessMode, f func(store.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso, AccessMode: mode})
	if err != nil {
		return wrap(err, "begin")
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	t := &recTx{ctx: ctx, tx: tx, l: newTxLedger(ctx, tx), write: mode == pgx.ReadWrite,
		ns: map[string]bool{}, locked: map[string]*whState{}, readOnly: mode == pgx.ReadOnly}
	if err := f(t); err != nil {
		if retryable(err) {
			return store.ErrConflict
		}
		return err
	}
	if !t.write {
		return nil
	}
	if err := t.flush(); err != nil {
		return wrap(err, "write records")
	}
	return wrap(tx.Commit(ctx), "commit records")
}

// checkTx is the read-only Tx the master-data check sees inside ApplyBatch:
// point reads of kv through the apply's transaction, remembered for the
// batch (its ops mostly name the same few items and locations).
func checkTx(ctx context.Context, tx pgx.Tx) *recTx {
	return &recTx{ctx: ctx, tx: tx, l: newTxLedger(ctx, tx), memo: map[string]memoVal{}, readOnly: true}
}

// namespace locks k's namespace for an Update (see the package comment).
func (t *recTx) namespace(k []byte) error {
	if !t.write {
		return nil
	}
	ns := k
	if i := bytes.IndexByte(k, '/'); i >= 0 {
		ns = k[:i]
	}
	if t.ns[string(ns)] {
		return nil
	}
	if _, err := t.tx.Exec(t.ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || $1))`, "/shelfsync/kv/"+string(ns)); err != nil {
		return err
	}
	t.ns[string(ns)] = true
	return nil
}

// lockWH locks wh's row (as ApplyBatch does) before a ledger-side write.
func (t *recTx) lockWH(wh string) (*whState, error) {
	if !t.write {
		return nil, errors.New("store: write in a read-only transaction")
	}
	if st, ok := t.locked[wh]; ok {
		return st, nil
	}
	st := &whState{}
	if _, err := t.tx.Exec(t.ctx, `INSERT INTO warehouses (wh) VALUES ($1) ON CONFLICT DO NOTHING`, wh); err != nil {
		return nil, err
	}
	if err := t.tx.QueryRow(t.ctx, `SELECT down_head FROM warehouses WHERE wh = $1 FOR UPDATE`, wh).Scan(&st.head); err != nil {
		return nil, err
	}
	t.locked[wh] = st
	t.order = append(t.order, wh)
	return st, nil
}

// flush writes what the transaction buffered: the ledger's and the
// detector's writes, and each locked warehouse's downstream entries
// numbered after its head.
func (t *recTx) flush() error {
	var b pgx.Batch
	if err := t.l.queue(&b); err != nil {
		return err
	}
	for _, wh := range t.order {
		st := t.locked[wh]
		for _, e := range st.down {
			st.head++
			b.Queue(`INSERT INTO down_log (wh, seq, kind, item_key, target, body) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (wh, kind, item_key) DO UPDATE SET seq = excluded.seq, target = excluded.target, body = excluded.body`,
				wh, st.head, int16(e.kind), []byte(e.itemKey), e.target, e.body)
		}
		if len(st.down) > 0 {
			b.Queue(`UPDATE warehouses SET down_head = $2 WHERE wh = $1`, wh, st.head)
		}
		st.down = nil
	}
	if b.Len() == 0 {
		return nil
	}
	return t.tx.SendBatch(t.ctx, &b).Close()
}

func (t *recTx) Get(k []byte) ([]byte, bool, error) {
	if t.memo != nil {
		if m, ok := t.memo[string(k)]; ok {
			return bytes.Clone(m.v), m.ok, nil
		}
	}
	if err := t.namespace(k); err != nil {
		return nil, false, err
	}
	var v []byte
	err := t.tx.QueryRow(t.ctx, `SELECT v FROM kv WHERE k = $1`, k).Scan(&v)
	if retryable(err) {
		return nil, false, store.ErrConflict // the transaction's failure, not a missing record
	}
	if err == pgx.ErrNoRows {
		if t.memo != nil {
			t.memo[string(k)] = memoVal{}
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if t.memo != nil {
		t.memo[string(k)] = memoVal{v: v, ok: true}
	}
	return bytes.Clone(v), true, nil
}

func (t *recTx) Set(k, v []byte) error {
	if t.readOnly {
		return errors.New("store: write in a read-only transaction")
	}
	if err := t.namespace(k); err != nil {
		return err
	}
	if v == nil {
		v = []byte{}
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, k, v)
	return err
}

func (t *recTx) Delete(k []byte) error {
	if t.readOnly {
		return errors.New("store: write in a read-only transaction")
	}
	if err := t.namespace(k); err != nil {
		return err
	}
	_, err := t.tx.Exec(t.ctx, `DELETE FROM kv WHERE k = $1`, k)
	return err
}

// prefixEnd is the least key greater than every key with prefix p, or nil
// when there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func (t *recTx) Scan(prefix []byte, o store.ScanOptions, fn func(k, v []byte) error) error {
	if err := t.namespace(prefix); err != nil {
		return err
	}
	col := "v"
	if o.KeysOnly {
		col = "NULL::bytea"
	}
	end := prefixEnd(prefix)
	// The bounds move as chunks are read: lo is inclusive, hi exclusive
	// (nil: unbounded).
	lo, hi := bytes.Clone(prefix), end
	for {
		var sql string
		var args []any
		if o.Reverse {
			sql = `SELECT k, ` + col + ` FROM kv WHERE k >= $1 AND ($2::bytea IS NULL OR k < $2) ORDER BY k DESC LIMIT $3`
		} else {
			sql = `SELECT k, ` + col + ` FROM kv WHERE k >= $1 AND ($2::bytea IS NULL OR k < $2) ORDER BY k LIMIT $3`
		}
		args = []any{lo, hi, scanChunk}
		rows, err := t.tx.Query(t.ctx, sql, args...)
		if err != nil {
			return err
		}
		type kvRow struct{ k, v []byte }
		var got []kvRow
		for rows.Next() {
			var r kvRow
			if err := rows.Scan(&r.k, &r.v); err != nil {
				rows.Close()
				return err
			}
			got = append(got, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range got {
			if !bytes.HasPrefix(r.k, prefix) {
				continue
			}
			if err := fn(r.k, r.v); err != nil {
				if errors.Is(err, store.ErrStopScan) {
					return nil
				}
				return err
			}
		}
		if len(got) < scanChunk {
			return nil
		}
		last := got[len(got)-1].k
		if o.Reverse {
			hi = last // exclusive
		} else {
			lo = append(bytes.Clone(last), 0) // the least key after last
		}
	}
}

func (t *recTx) AppendDown(wh, target string, kind protocol.DownKind, itemKey string, body any) error {
	st, err := t.lockWH(wh)
	if err != nil {
		return err
	}
	raw, err := protocol.Marshal(body)
	if err != nil {
		return err
	}
	st.down = append(st.down, downEntry{target: target, kind: kind, itemKey: itemKey, body: raw})
	return nil
}

func (t *recTx) RaiseConflict(c conflicts.Conflict) (conflicts.Conflict, bool, error) {
	if _, err := t.lockWH(c.Warehouse); err != nil {
		return c, false, err
	}
	return apply.Raise(t.l, c)
}

func (t *recTx) Watermark(wh, gw string) (uint64, error) {
	var wm int64
	err := t.tx.QueryRow(t.ctx, `SELECT wm FROM watermarks WHERE wh = $1 AND gw = $2`, wh, gw).Scan(&wm)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	return uint64(wm), err
}

func (t *recTx) Task(wh, id string) (protocol.Task, bool, error) {
	var task protocol.Task
	var body []byte
	err := t.tx.QueryRow(t.ctx, `SELECT body FROM tasks WHERE wh = $1 AND id = $2`, wh, id).Scan(&body)
	if err == pgx.ErrNoRows {
		return task, false, nil
	}
	if err != nil {
		return task, false, err
	}
	return task, true, protocol.Unmarshal(body, &task)
}

func (t *recTx) PutTask(wh, target string, task protocol.Task) error {
	if _, err := t.lockWH(wh); err != nil {
		return err
	}
	body, err := protocol.Marshal(task)
	if err != nil {
		return err
	}
	if _, err := t.tx.Exec(t.ctx, `INSERT INTO tasks (wh, id, body) VALUES ($1, $2, $3) ON CONFLICT (wh, id) DO UPDATE SET body = excluded.body`, wh, task.ID, body); err != nil {
		return err
	}
	return t.AppendDown(wh, target, protocol.DownTask, "task/"+task.ID, task)
}

func (t *recTx) Tasks(wh string) ([]protocol.Task, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT body FROM tasks WHERE wh = $1 ORDER BY id`, wh)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (protocol.Task, error) {
		var body []byte
		var task protocol.Task
		if err := r.Scan(&body); err != nil {
			return task, err
		}
		return task, protocol.Unmarshal(body, &task)
	})
}

func (t *recTx) ScanOps(wh string, fn func(gw string, op *protocol.Op) error) error {
	// In chunks, like Scan: fn may query through the same transaction.
	lastGW, lastSeq := "", int64(-1)
	for {
		rows, err := t.tx.Query(t.ctx, `SELECT gw, seq, body FROM ops WHERE wh = $1 AND (gw, seq) > ($2, $3)
			ORDER BY gw, seq LIMIT $4`, wh, lastGW, lastSeq, scanChunk)
		if err != nil {
			return err
		}
		type opRow struct {
			gw   string
			seq  int64
			body []byte
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (opRow, error) {
			var o opRow
			return o, r.Scan(&o.gw, &o.seq, &o.body)
		})
		if err != nil {
			return err
		}
		for _, r := range got {
			var op protocol.Op
			if err := protocol.Unmarshal(r.body, &op); err != nil {
				return fmt.Errorf("op %s/%s/%d: %w", wh, r.gw, r.seq, err)
			}
			if err := fn(r.gw, &op); err != nil {
				return err
			}
		}
		if len(got) < scanChunk {
			return nil
		}
		lastGW, lastSeq = got[len(got)-1].gw, got[len(got)-1].seq
	}
}

func (t *recTx) Origin(k ledger.Key) (store.Origin, bool, error) {
	var hlc, seq int64
	var gw string
	err := t.tx.QueryRow(t.ctx, `SELECT hlc, gw, seq FROM deltas WHERE `+keyWhere+` AND qty > 0
		ORDER BY hlc, gw, seq LIMIT 1`, keyArgs(k)...).Scan(&hlc, &gw, &seq)
	if err == pgx.ErrNoRows {
		return store.Origin{}, false, nil
	}
	if err != nil {
		return store.Origin{}, false, err
	}
	out := store.Origin{HLC: hlcOf(hlc)}
	var body []byte
	err = t.tx.QueryRow(t.ctx, `SELECT body FROM ops WHERE wh = $1 AND gw = $2 AND seq = $3`, k.WH, gw, seq).Scan(&body)
	switch {
	case err == pgx.ErrNoRows:
	case err != nil:
		return store.Origin{}, false, err
	default:
		var op protocol.Op
		if err := protocol.Unmarshal(body, &op); err != nil {
			return store.Origin{}, false, err
		}
		out.Expiry, out.Kind = op.Expiry, op.Kind
	}
	return out, true, nil
}

func (t *recTx) Stock(wh, sku string) ([]store.StockRow, error) {
	return t.StockWhere(store.StockQuery{Warehouse: wh, SKU: sku})
}

func (t *recTx) StockWhere(q store.StockQuery) ([]store.StockRow, error) {
	sql := stockSQL
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := t.tx.Query(t.ctx, sql, q.Warehouse, q.Location, q.SKU, q.Lot, q.Owner, q.NonZero)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanStockRow)
}

func (t *recTx) StockGroups(gs []store.StockGroup) ([]store.StockRow, error) {
	if len(gs) == 0 {
		return nil, nil
	}
	whs, locs, skus := make([]string, len(gs)), make([]string, len(gs)), make([]string, len(gs))
	for i, g := range gs {
		whs[i], locs[i], skus[i] = g.Warehouse, g.Location, g.SKU
	}
	rows, err := t.tx.Query(t.ctx, stockGroupsSQL, whs, locs, skus)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanStockRow)
}

func (t *recTx) PutSettings(wh string, st store.Settings) error {
	if _, err := t.lockWH(wh); err != nil {
		return err
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO settings (wh, skew_window_ms, strict_catalog) VALUES ($1, $2, $3)
		ON CONFLICT (wh) DO UPDATE SET skew_window_ms = excluded.skew_window_ms, strict_catalog = excluded.strict_catalog`,
		wh, st.SkewWindowMS, st.StrictCatalog)
	return err
}

func (t *recTx) PutOrder(o store.Order) ([]conflicts.Conflict, error) {
	if _, err := t.lockWH(o.Warehouse); err != nil {
		return nil, err
	}
	return apply.PutOrder(&pgTx{ctx: t.ctx, tx: t.tx, txLedger: t.l, whs: map[string]*whDown{o.Warehouse: {idx: map[downKey]int{}}}}, o)
}

func (t *recTx) OrderPicks(wh, id string) ([]store.OrderPick, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT p.line, p.gw, p.seq, p.qty, o.body FROM line_picks p
		LEFT JOIN ops o ON o.wh = p.wh AND o.gw = p.gw AND o.seq = p.seq
		WHERE p.wh = $1 AND p.ord = $2 ORDER BY p.line, p.hlc, p.gw, p.seq`, wh, []byte(id))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.OrderPick, error) {
		var p store.OrderPick
		var line, seq int64
		var body []byte
		if err := r.Scan(&line, &p.Gateway, &seq, &p.Qty, &body); err != nil {
			return p, err
		}
		p.Line, p.Seq = uint32(line), uint64(seq)
		if body != nil {
			var op protocol.Op
			if err := protocol.Unmarshal(body, &op); err != nil {
				return p, err
			}
			p.SKU, p.Lot = op.SKU, op.Lot
		}
		return p, nil
	})
}
