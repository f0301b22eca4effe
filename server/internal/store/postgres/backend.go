package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/apply"
)

// apply.Backend over PostgreSQL. A write transaction first locks the
// watermark row of its scope's gateway (INSERT … ON CONFLICT DO NOTHING,
// then SELECT … FOR UPDATE), so that a batch another replica is applying
// for the same gateway waits for it and then reads its watermark; then its
// warehouse's row, so that the merges and actions of one warehouse — which
// read and write the same stock keys, conflicts and downstream log — are
// serial; and it loads the stock keys of the scope, all in one round trip.
// Lock order is always watermark row, then warehouse row. Its writes are
// buffered and sent in one pipeline at commit, mostly as array-parameter
// (unnest) statements.

type backend struct{ s *Store }

func hlcOf(v int64) protocol.HLC { return protocol.HLC(uint64(v)) }

func (b backend) Update(ctx context.Context, sc apply.Scope, f func(apply.Tx) error) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err = b.update(ctx, sc, f)
		if !retryable(err) && !errors.Is(err, store.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 2 * time.Millisecond)
	}
	return store.ErrConflict
}

// maxAttempts bounds the runs of a transaction that keeps failing with a
// serialization failure or a deadlock.
const maxAttempts = 10

func (b backend) update(ctx context.Context, sc apply.Scope, f func(apply.Tx) error) error {
	t := &pgTx{ctx: ctx, s: b.s, txLedger: newTxLedger(ctx, nil), wms: map[apply.GW]*wmState{}, whs: map[string]*whDown{}}
	var q pgx.Batch
	q.BeginTx(pgx.TxOptions{})
	for _, g := range sc.Gateways {
		w := &wmState{}
		t.wms[g] = w
		q.Queue(`INSERT INTO watermarks (wh, gw) VALUES ($1, $2) ON CONFLICT DO NOTHING`, g.WH, g.GW)
		q.Queue(`SELECT wm FROM watermarks WHERE wh = $1 AND gw = $2 FOR UPDATE`, g.WH, g.GW).
			QueryRow(func(r pgx.Row) error { return r.Scan(&w.v) })
	}
	for _, wh := range sc.Warehouses {
		d := &whDown{idx: map[downKey]int{}}
		t.whs[wh] = d
		t.order = append(t.order, wh)
		q.Queue(`INSERT INTO warehouses (wh) VALUES ($1) ON CONFLICT DO NOTHING`, wh)
		q.Queue(`SELECT down_head FROM warehouses WHERE wh = $1 FOR UPDATE`, wh).QueryRow(func(r pgx.Row) error { return r.Scan(&d.head) })
	}
	byWH := map[string][]ledger.Key{}
	for _, k := range sc.Keys {
		byWH[k.WH] = append(byWH[k.WH], k)
	}
	for _, wh := range sc.Warehouses {
		t.txLedger.queuePrefetch(&q, wh, byWH[wh])
	}
	tx, err := b.s.sendTx(ctx, &q)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	t.tx, t.txLedger.tx = tx, tx
	if err := f(t); err != nil {
		return err
	}
	return t.commit()
}

func (b backend) View(ctx context.Context, f func(apply.Tx) error) error {
	tx, err := b.s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read-only
	return f(&pgTx{ctx: ctx, s: b.s, tx: tx, txLedger: newTxLedger(ctx, tx), readOnly: true})
}

// pgTx is apply.Tx over one transaction holding the locks of its scope:
// watermark rows (wms) and warehouse rows (whs).
type pgTx struct {
	ctx       context.Context
	s         *Store
	tx        pgx.Tx
	*txLedger // the ledger and the conflict indexes
	wms       map[apply.GW]*wmState
	whs       map[string]*whDown
	order     []string // warehouses, in lock order
	readOnly  bool
	ops       []opRow
	rows      pgx.Batch // quarantine and task rows, notifications, in order
	check     *recTx
}

// wmState is a locked watermark.
type wmState struct {
	v     int64
	dirty bool
}

// whDown is a locked warehouse: its downstream log's head when locked and
// the entries the transaction appends after it.
type whDown struct {
	head  int64
	downs []downEntry
	idx   map[downKey]int // index in downs of an item key's entry
}

type opRow struct {
	wh, gw   string
	seq, hlc int64
	kind     int16
	body     []byte
}

// downEntry is a downstream item waiting for its seq.
type downEntry struct {
	target  string
	kind    protocol.DownKind
	itemKey string
	body    []byte
	dead    bool // replaced by a later entry of the same key
}

type downKey struct {
	kind    protocol.DownKind
	itemKey string
}

var _ apply.Tx = (*pgTx)(nil)

func (t *pgTx) owns(wh string) (*whDown, error) {
	if t.readOnly {
		return nil, errors.New("store: write in a read-only transaction")
	}
	d, ok := t.whs[wh]
	if !ok {
		return nil, fmt.Errorf("store: write to warehouse %q, whose lock this transaction does not hold", wh)
	}
	return d, nil
}

func (t *pgTx) Watermark(wh, gw string) (uint64, error) {
	if w, ok := t.wms[apply.GW{WH: wh, GW: gw}]; ok {
		return uint64(w.v), nil
	}
	var wm int64
	err := t.tx.QueryRow(t.ctx, `SELECT wm FROM watermarks WHERE wh = $1 AND gw = $2`, wh, gw).Scan(&wm)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return uint64(wm), err
}

func (t *pgTx) SetWatermark(wh, gw string, wm uint64) error {
	w, ok := t.wms[apply.GW{WH: wh, GW: gw}]
	if !ok || t.readOnly {
		return fmt.Errorf("store: watermark of %s/%s is not locked by this transaction", wh, gw)
	}
	if wm > math.MaxInt64 {
		return fmt.Errorf("watermark %d of %s/%s: seq beyond 2^63 cannot be stored", wm, wh, gw)
	}
	w.v, w.dirty = int64(wm), true
	return nil
}

func (t *pgTx) PutOp(wh, gw string, op *protocol.Op, enc []byte) error {
	if _, err := t.owns(wh); err != nil {
		return err
	}
	t.ops = append(t.ops, opRow{wh: wh, gw: gw, seq: int64(op.Seq), hlc: int64(op.HLC), kind: int16(op.Kind), body: enc})
	return nil
}

func (t *pgTx) Quarantined(wh, gw string, seq uint64) (store.Quarantined, bool, error) {
	q := store.Quarantined{Warehouse: wh, Gateway: gw, Seq: seq}
	if seq > math.MaxInt64 {
		return q, false, nil
	}
	var body []byte
	err := t.tx.QueryRow(t.ctx, `SELECT reason, body, status, decided_by FROM quarantine WHERE wh = $1 AND gw = $2 AND seq = $3`,
		wh, gw, int64(seq)).Scan(&q.Reason, &body, &q.Status, &q.By)
	if errors.Is(err, pgx.ErrNoRows) {
		return q, false, nil
	}
	if err != nil {
		return q, false, err
	}
	if err := protocol.Unmarshal(body, &q.Op); err != nil {
		return q, false, fmt.Errorf("quarantined op %s/%s/%d: %w", wh, gw, seq, err)
	}
	return q, true, nil
}

func (t *pgTx) PutQuarantined(q store.Quarantined) error {
	if _, err := t.owns(q.Warehouse); err != nil {
		return err
	}
	body, err := protocol.Marshal(q.Op)
	if err != nil {
		return err
	}
	t.rows.Queue(`INSERT INTO quarantine (wh, gw, seq, reason, body, status, decided_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (wh, gw, seq) DO UPDATE SET reason = excluded.reason, body = excluded.body, status = excluded.status, decided_by = excluded.decided_by`,
		q.Warehouse, q.Gateway, int64(q.Seq), q.Reason, body, q.Status, q.By)
	return nil
}

func (t *pgTx) AppendDown(wh, target string, kind protocol.DownKind, itemKey string, body any) error {
	d, err := t.owns(wh)
	if err != nil {
		return err
	}
	raw, err := protocol.Marshal(body)
	if err != nil {
		return err
	}
	k := downKey{kind, itemKey}
	if i, ok := d.idx[k]; ok {
		d.downs[i].dead = true
	}
	d.idx[k] = len(d.downs)
	d.downs = append(d.downs, downEntry{target: target, kind: kind, itemKey: itemKey, body: raw})
	return nil
}

func (t *pgTx) PutTask(wh string, task protocol.Task) error {
	if _, err := t.owns(wh); err != nil {
		return err
	}
	body, err := protocol.Marshal(task)
	if err != nil {
		return err
	}
	t.rows.Queue(`INSERT INTO tasks (wh, id, body) VALUES ($1, $2, $3) ON CONFLICT (wh, id) DO UPDATE SET body = excluded.body`, wh, task.ID, body)
	return nil
}

// OpenCountTasks implements apply.Tx: one query of the warehouse's tasks,
// filtered (a round trip; no per-transaction sort to avoid here).
func (t *pgTx) OpenCountTasks(wh, loc string) ([]protocol.Task, error) {
	all, err := t.Records().Tasks(wh)
	if err != nil {
		return nil, err
	}
	var out []protocol.Task
	for _, task := range all {
		if task.Kind == "count" && (task.Status == "" || task.Status == "open") && task.Location == loc {
			out = append(out, task)
		}
	}
	return out, nil
}

// PutOrder writes at once: the detector reads the line quantities from
// the table.
func (t *pgTx) PutOrder(o store.Order) error {
	if _, err := t.owns(o.Warehouse); err != nil {
		return err
	}
	return putOrder(t.ctx, t.tx, o)
}

func putOrder(ctx context.Context, tx pgx.Tx, o store.Order) error {
	body, err := protocol.Marshal(o)
	if err != nil {
		return err
	}
	id := []byte(o.ID)
	var b pgx.Batch
	b.Queue(`INSERT INTO orders (wh, id, body) VALUES ($1, $2, $3)
		ON CONFLICT (wh, id) DO UPDATE SET body = excluded.body`, o.Warehouse, id, body)
	if len(o.Lines) > 0 {
		lines, qtys := make([]int64, len(o.Lines)), make([]int64, len(o.Lines))
		for i, l := range o.Lines {
			lines[i], qtys[i] = int64(l.Line), l.Qty
		}
		b.Queue(`INSERT INTO order_lines (wh, ord, line, qty) SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[])
			ON CONFLICT (wh, ord, line) DO UPDATE SET qty = excluded.qty`, o.Warehouse, id, lines, qtys)
	}
	return tx.SendBatch(ctx, &b).Close()
}

func (t *pgTx) Records() store.Tx {
	if t.check == nil {
		t.check = checkTx(t.ctx, t.tx)
	}
	return t.check
}

// Applied notifies the replica feed (SetApplyNotify): PostgreSQL sends the
// notifications at commit, and only then, so the other replicas hear of
// every committed batch even if this one dies right after.
func (t *pgTx) Applied(wh, gw string, res *store.Result) error {
	if t.s.notify == nil {
		return nil
	}
	for _, p := range t.s.notify(wh, gw, res) {
		t.rows.Queue(`SELECT pg_notify($1, $2)`, t.s.channel, string(p))
	}
	return nil
}

// commit sends what the transaction buffered — the op log, the rows beside
// it, the ledger's and the detector's writes, the downstream entries
// numbered after the head, the watermark — in one pipeline, and commits.
func (t *pgTx) commit() error {
	var b pgx.Batch
	if n := len(t.ops); n > 0 {
		whs, gws := make([]string, n), make([]string, n)
		seqs, hlcs, kinds, bodies := make([]int64, n), make([]int64, n), make([]int16, n), make([][]byte, n)
		for i, o := range t.ops {
			whs[i], gws[i], seqs[i], hlcs[i], kinds[i], bodies[i] = o.wh, o.gw, o.seq, o.hlc, o.kind, o.body
		}
		b.Queue(`INSERT INTO ops (wh, gw, seq, hlc, kind, body)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::smallint[], $6::bytea[])`, whs, gws, seqs, hlcs, kinds, bodies)
	}
	if err := t.txLedger.queue(&b); err != nil {
		return err
	}
	var whs, targets []string
	var seqs []int64
	var kinds []int16
	var items, bodies [][]byte
	for _, wh := range t.order {
		d := t.whs[wh]
		for _, e := range d.downs {
			d.head++
			if e.dead {
				continue // the log is compacted per item key: a gap is allowed
			}
			whs, seqs, kinds, items, targets, bodies = append(whs, wh), append(seqs, d.head), append(kinds, int16(e.kind)), append(items, []byte(e.itemKey)), append(targets, e.target), append(bodies, e.body)
		}
		if len(d.downs) > 0 {
			b.Queue(`UPDATE warehouses SET down_head = $2 WHERE wh = $1`, wh, d.head)
		}
	}
	if len(seqs) > 0 {
		b.Queue(`INSERT INTO down_log (wh, seq, kind, item_key, target, body)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::smallint[], $4::bytea[], $5::text[], $6::bytea[])
			ON CONFLICT (wh, kind, item_key) DO UPDATE SET seq = excluded.seq, target = excluded.target, body = excluded.body`,
			whs, seqs, kinds, items, targets, bodies)
	}
	var wwh, wgw []string
	var wv []int64
	for g, w := range t.wms {
		if w.dirty {
			wwh, wgw, wv = append(wwh, g.WH), append(wgw, g.GW), append(wv, w.v)
		}
	}
	if len(wv) > 0 {
		b.Queue(`UPDATE watermarks w SET wm = u.wm, applied_at = now() FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(wh, gw, wm)
			WHERE w.wh = u.wh AND w.gw = u.gw`, wwh, wgw, wv)
	}
	for _, qq := range t.rows.QueuedQueries {
		b.QueuedQueries = append(b.QueuedQueries, qq)
	}
	if b.Len() > 0 {
		if err := t.tx.SendBatch(t.ctx, &b).Close(); err != nil {
			return err
		}
	}
	return t.tx.Commit(t.ctx)
}
