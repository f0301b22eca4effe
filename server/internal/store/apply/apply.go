// Package apply is the server's one apply core: everything a committed
// batch does — the sequence rule's verdict, validation and quarantine, the
// merge rule (protocol/ledger), conflict detection, the downstream log and
// the watermark — and the actions that merge or judge outside a batch:
// server-origin ops, conflict resolution, quarantine decisions and orders.
//
// It is written once, against Backend: a transaction (Tx) of typed point
// reads, ordered range reads (the ledger's and the detector's indexes,
// ledger.Store and conflicts.Store) and writes, plus the keys a transaction
// will touch (Scope), which a backend may load in one round trip before the
// core reads them. store/badger and store/postgres implement Backend and
// embed an Engine; they hold no apply step of their own.
package apply

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Tx is one backend transaction as the core sees it. Reads see the
// transaction's own writes.
type Tx interface {
	ledger.Store
	conflicts.Store
	// Watermark returns the highest seq applied for wh/gw (0 if none).
	Watermark(wh, gw string) (uint64, error)
	// SetWatermark moves wh/gw's watermark.
	SetWatermark(wh, gw string, wm uint64) error
	// PutOp logs an applied op of wh/gw: the log keeps enc, op's
	// encoding, byte for byte (op is the same op decoded, for what a
	// backend indexes: its seq, hlc and kind).
	PutOp(wh, gw string, op *protocol.Op, enc []byte) error
	// Quarantined returns the op kept aside at wh/gw/seq.
	Quarantined(wh, gw string, seq uint64) (store.Quarantined, bool, error)
	// PutQuarantined creates or replaces a quarantined op.
	PutQuarantined(q store.Quarantined) error
	// AppendDown adds an item to wh's downstream log for every gateway
	// (target "") or one, replacing the older entry of the same kind and
	// item key.
	AppendDown(wh, target string, kind protocol.DownKind, itemKey string, body any) error
	// PutTask creates or replaces a task of wh (the core sends it
	// downstream).
	PutTask(wh string, t protocol.Task) error
	// OpenCountTasks returns the open count tasks (kind "count", status
	// "" or "open") of wh at loc, in ID order, as Records().Tasks would
	// list them.
	OpenCountTasks(wh, loc string) ([]protocol.Task, error)
	// PutOrder creates or replaces an order and its line quantities, which
	// OrderLineQty reads at once.
	PutOrder(o store.Order) error
	// Records is a read-only store.Tx over this transaction, for the
	// master-data check.
	Records() store.Tx
	// Applied is told of every batch (or chunk of one) the transaction
	// applied, with its result, before it commits.
	Applied(wh, gw string, res *store.Result) error
}

// Scope is what a write transaction works on. A backend that locks (one
// database shared by replicas) locks the watermark rows of Gateways, then
// the rows of Warehouses, each in the order given (NewScope sorts them, so
// that every transaction takes its locks in one global order); Keys are the
// stock keys the transaction will merge into, which it may load up front.
type Scope struct {
	Gateways   []GW
	Warehouses []string
	Keys       []ledger.Key
}

// GW names a gateway of a warehouse.
type GW struct{ WH, GW string }

// NewScope is the scope of writes to the warehouses of gws and whs that
// move the watermarks of gws, with keys to load; it sorts and de-duplicates.
func NewScope(gws []GW, whs []string, keys []ledger.Key) Scope {
	gws = slices.Clone(gws)
	slices.SortFunc(gws, func(a, b GW) int { return cmp.Or(cmp.Compare(a.WH, b.WH), cmp.Compare(a.GW, b.GW)) })
	gws = slices.Compact(gws)
	whs = slices.Clone(whs)
	for _, g := range gws {
		whs = append(whs, g.WH)
	}
	slices.Sort(whs)
	return Scope{Gateways: gws, Warehouses: slices.Compact(whs), Keys: keys}
}

// Holds reports whether s locks wh/gw's watermark.
func (s Scope) Holds(wh, gw string) bool { return slices.Contains(s.Gateways, GW{wh, gw}) }

// Backend is a storage engine.
type Backend interface {
	// Update runs f in one read-write transaction over s and commits it
	// when f returns nil. It runs f again when the transaction lost a race
	// it can retry (so f must be safe to run again), and returns
	// store.ErrConflict after repeated losses.
	Update(ctx context.Context, s Scope, f func(Tx) error) error
	// View runs f in a read-only transaction.
	View(ctx context.Context, f func(Tx) error) error
}

// Options tune an Engine.
type Options struct {
	// ChunkOps bounds the ops merged per transaction (0: a whole batch in
	// one). Each chunk moves the watermark to its last op in the same
	// transaction, so exactly-once holds at every chunk boundary.
	// ApplyBatches does not chunk: it merges its batches in transactions
	// of up to MaxGroupOps ops.
	ChunkOps int
	// MaxGroupOps bounds the ops ApplyBatches merges in one transaction
	// (0: 8192).
	MaxGroupOps int
}

// Engine applies batches and actions over a Backend. Backends embed it.
type Engine struct {
	b     Backend
	opt   Options
	check func(store.Tx, string, *protocol.Op) error
}

// New returns an Engine over b.
func New(b Backend, opt Options) *Engine { return &Engine{b: b, opt: opt} }

// SetOpCheck implements store.Store.
func (e *Engine) SetOpCheck(f func(tx store.Tx, wh string, op *protocol.Op) error) { e.check = f }

// Validate is protocol.Op.Validate plus what every backend must be able
// to store: a gateway field that is UTF-8 without NUL bytes.
func Validate(op *protocol.Op) error {
	if err := op.Validate(); err != nil {
		return err
	}
	if op.GW != "" && (!utf8.ValidString(op.GW) || strings.IndexByte(op.GW, 0) >= 0) {
		return fmt.Errorf("op %d (%s): gw is not UTF-8 or contains a NUL byte", op.Seq, op.Kind)
	}
	return nil
}

// validate runs Validate and the master-data check. An error that is
// store.ErrConflict is the transaction's, not the op's.
//
// The check may change op (it stamps the owner of an op that names none).
// enc is op's encoding as received (nil: none); validate returns it when
// op is as it was, field for field, and nil when the check changed op:
// those bytes are then not the op to log.
func (e *Engine) validate(tx Tx, wh string, op *protocol.Op, enc []byte) ([]byte, error) {
	if err := Validate(op); err != nil {
		return enc, err
	}
	if e.check == nil {
		return enc, nil
	}
	if enc == nil {
		return nil, e.check(tx.Records(), wh, op)
	}
	was := op.Clone()
	err := e.check(tx.Records(), wh, op)
	if !op.Equal(&was) {
		enc = nil
	}
	return enc, err
}

// Keys lists the stock keys the valid ops among ops merge into.
func Keys(wh string, ops []protocol.Op) []ledger.Key {
	var keys []ledger.Key
	for i := range ops {
		op := &ops[i]
		if Validate(op) != nil {
			continue // quarantined; its strings may not even be storable
		}
		var buf [ledger.MaxEffects]ledger.Effect
		for _, d := range ledger.AppendDeltas(buf[:0], wh, op) {
			keys = append(keys, d.Key)
		}
		for _, c := range ledger.CountLines(wh, op) {
			keys = append(keys, c.Key)
		}
	}
	return keys
}

// ApplyBatch implements store.Store: it judges b with the sequence rule
// and, for Apply, merges the new ops, quarantines invalid ones, detects
// conflicts, logs the changed stock downstream and moves the watermark, in
// one transaction per chunk (Options.ChunkOps).
func (e *Engine) ApplyBatch(ctx context.Context, wh, gw string, b *protocol.OpBatch) (store.Result, error) {
	if b.Last > math.MaxInt64 {
		return store.Result{}, fmt.Errorf("apply %s/%s %d..%d: seq beyond 2^63 cannot be stored", wh, gw, b.First, b.Last)
	}
	var total store.Result
	for start := 0; ; {
		end := len(b.Ops)
		if e.opt.ChunkOps > 0 {
			end = min(start+e.opt.ChunkOps, len(b.Ops))
		}
		ops := b.Ops[start:end]
		last := b.Last
		if end < len(b.Ops) {
			last = ops[len(ops)-1].Seq
		}
		var res store.Result
		err := e.b.Update(ctx, NewScope([]GW{{wh, gw}}, nil, Keys(wh, ops)), func(tx Tx) error {
			var down stockLog
			var err error
			if res, err = e.applyIn(tx, &down, wh, gw, b, ops, received(b, start, end), last, start == 0); err != nil {
				return err
			}
			return down.flush(tx)
		})
		if errors.Is(err, store.ErrConflict) {
			return total, err
		}
		if err != nil {
			return total, fmt.Errorf("apply %s/%s %d..%d: %w", wh, gw, b.First, b.Last, err)
		}
		if start == 0 {
			total.Verdict = res.Verdict
		}
		total.WM = res.WM
		total.Applied += res.Applied
		total.Quarantined += res.Quarantined
		total.Changes = append(total.Changes, res.Changes...)
		total.Conflicts = append(total.Conflicts, res.Conflicts...)
		if total.Verdict != protocol.Apply || end >= len(b.Ops) {
			return total, nil
		}
		start = end
	}
}

// defaultGroupOps bounds ApplyBatches' transactions when Options sets no
// bound.
const defaultGroupOps = 8192

// ApplyBatches implements store.Store: the batches apply in order, in as
// few transactions as Options.MaxGroupOps allows (group commit), each batch
// judged against the watermark the ones before it left. A group too big
// for one transaction (store.ErrTxnTooBig) is split in halves until it
// fits. A transaction that fails for another reason than a lost race is
// applied again batch by batch, so that one bad batch fails alone.
//
// It returns the results of the batches committed, in order, up to the
// first that failed, and that one's error.
func (e *Engine) ApplyBatches(ctx context.Context, batches []store.Batch) ([]store.Result, error) {
	out := make([]store.Result, 0, len(batches))
	limit := e.opt.MaxGroupOps
	if limit <= 0 {
		limit = defaultGroupOps
	}
	for len(batches) > 0 {
		n, ops := 0, 0
		for n < len(batches) && (n == 0 || ops+len(batches[n].B.Ops) <= limit) {
			ops += len(batches[n].B.Ops)
			n++
		}
		rs, err := e.applyGroup(ctx, batches[:n])
		for errors.Is(err, store.ErrTxnTooBig) && n > 1 {
			// Too big for one transaction (nothing was written): the
			// first half now, the rest in the next round.
			n /= 2
			rs, err = e.applyGroup(ctx, batches[:n])
		}
		if err != nil && !errors.Is(err, store.ErrConflict) && n > 1 {
			// Batch by batch, so that a bad batch fails alone.
			rs, err = nil, nil
			for _, b := range batches[:n] {
				r, berr := e.ApplyBatch(ctx, b.WH, b.GW, b.B)
				if berr != nil {
					err = berr
					break
				}
				rs = append(rs, r)
			}
		}
		out = append(out, rs...)
		if err != nil {
			return out, err
		}
		batches = batches[n:]
	}
	return out, nil
}

// applyGroup applies batches in one transaction.
func (e *Engine) applyGroup(ctx context.Context, batches []store.Batch) ([]store.Result, error) {
	if len(batches) == 1 {
		b := batches[0]
		r, err := e.ApplyBatch(ctx, b.WH, b.GW, b.B)
		if err != nil {
			return nil, err
		}
		return []store.Result{r}, nil
	}
	var gws []GW
	var keys []ledger.Key
	for _, b := range batches {
		if b.B.Last > math.MaxInt64 {
			return nil, fmt.Errorf("apply %s/%s %d..%d: seq beyond 2^63 cannot be stored", b.WH, b.GW, b.B.First, b.B.Last)
		}
		gws = append(gws, GW{b.WH, b.GW})
		keys = append(keys, Keys(b.WH, b.B.Ops)...)
	}
	var out []store.Result
	err := e.b.Update(ctx, NewScope(gws, nil, keys), func(tx Tx) error {
		out = out[:0]
		var down stockLog
		for _, b := range batches {
			r, err := e.applyIn(tx, &down, b.WH, b.GW, b.B, b.B.Ops, received(b.B, 0, len(b.B.Ops)), b.B.Last, true)
			if err != nil {
				return fmt.Errorf("apply %s/%s %d..%d: %w", b.WH, b.GW, b.B.First, b.B.Last, err)
			}
			out = append(out, r)
		}
		return down.flush(tx)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// received returns the received encodings of b.Ops[start:end], or nil
// when b was not decoded from the wire.
func received(b *protocol.OpBatch, start, end int) []protocol.RawOp {
	if len(b.Received) != len(b.Ops) {
		return nil
	}
	return b.Received[start:end]
}

// applyIn merges ops (a slice of b ending at seq last, with recv their
// received encodings, or nil) in tx; the first chunk also judges the whole
// batch with the sequence rule. The keys it changed join down, which the
// caller logs downstream before the transaction commits.
func (e *Engine) applyIn(tx Tx, down *stockLog, wh, gw string, b *protocol.OpBatch, ops []protocol.Op, recv []protocol.RawOp, last uint64, first bool) (store.Result, error) {
	res := store.Result{Verdict: protocol.Apply}
	wm, err := tx.Watermark(wh, gw)
	if err != nil {
		return res, err
	}
	res.WM = wm
	if first {
		if res.Verdict = protocol.Judge(wm, b.First, b.Last); res.Verdict != protocol.Apply {
			return res, nil
		}
	}
	det := &conflicts.Detector{}
	for i := range ops {
		op := &ops[i]
		if op.Seq <= wm {
			continue
		}
		var enc []byte
		if recv != nil {
			enc = recv[i]
		}
		if enc, err = e.validate(tx, wh, op, enc); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return res, err
			}
			if err := quarantine(tx, wh, gw, op, err.Error(), &res); err != nil {
				return res, err
			}
			continue
		}
		if err := ledger.CheckQty(tx, wh, gw, op); err != nil { // a key's on-hand stays within ±ledger.MaxKeyQty
			if !errors.Is(err, ledger.ErrQtyBound) {
				return res, err
			}
			if err := quarantine(tx, wh, gw, op, err.Error(), &res); err != nil {
				return res, err
			}
			continue
		}
		r, err := merge(tx, det, wh, gw, op, enc)
		if err != nil {
			return res, fmt.Errorf("op %d: %w", op.Seq, err)
		}
		res.Changes = append(res.Changes, r.Changes...)
		res.Conflicts = append(res.Conflicts, r.Conflicts...)
		res.Applied++
	}
	if last <= wm {
		return res, nil
	}
	res.WM = last
	down.add(res.Changes)
	if err := tx.SetWatermark(wh, gw, last); err != nil {
		return res, err
	}
	return res, tx.Applied(wh, gw, &res)
}

// quarantine keeps op aside with reason and raises its conflict.
func quarantine(tx Tx, wh, gw string, op *protocol.Op, reason string, res *store.Result) error {
	if err := tx.PutQuarantined(store.Quarantined{Warehouse: wh, Gateway: gw, Seq: op.Seq, Reason: reason, Op: *op}); err != nil {
		return err
	}
	c, written, err := conflicts.Raise(tx, conflicts.Quarantined(wh, gw, op.Seq, reason))
	if err != nil {
		return err
	}
	if written {
		res.Conflicts = append(res.Conflicts, c)
	}
	res.Quarantined++
	return nil
}

// merge logs op of wh/gw and merges it: the ledger, then conflict
// detection over the keys it changed. det carries what one transaction's
// detection learned from its earlier ops; nil starts afresh. enc is op's
// encoding as received, which the log keeps byte for byte; nil (an op the
// server made or changed) logs op encoded.
func merge(tx Tx, det *conflicts.Detector, wh, gw string, op *protocol.Op, enc []byte) (store.Result, error) {
	var res store.Result
	if det == nil {
		det = &conflicts.Detector{}
	}
	if enc == nil {
		var err error
		if enc, err = protocol.Marshal(op); err != nil {
			return res, fmt.Errorf("encode op: %w", err)
		}
	}
	if err := tx.PutOp(wh, gw, op, enc); err != nil {
		return res, err
	}
	ch, err := ledger.Apply(tx, wh, gw, op)
	if err != nil {
		return res, fmt.Errorf("merge: %w", err)
	}
	res.Changes = ch
	if res.Conflicts, err = det.Observe(tx, tx, wh, gw, op, ch); err != nil {
		return res, fmt.Errorf("conflicts: %w", err)
	}
	if op.Kind.IsCount() {
		done, err := closeCountTasks(tx, wh, gw, op)
		if err != nil {
			return res, fmt.Errorf("count tasks: %w", err)
		}
		res.Conflicts = append(res.Conflicts, done...)
	}
	res.Applied = 1
	return res, nil
}

// StockItemKey is the downstream item key of a stock key's value: the
// layout from before owners and statuses for owner "" and available.
func StockItemKey(k ledger.Key) string {
	s := k.Location + "\x00" + k.SKU + "\x00" + k.Lot
	if k.Owner != "" || k.Status != protocol.StatusAvailable {
		s += "\x00" + k.Owner + "\x00" + k.Status.String()
	}
	return s
}

// stockLog collects the keys a transaction changed, to log each one's
// value downstream once, when the transaction's batches are merged: the
// log keeps only an item key's latest entry, so logging a key once per
// batch of a group wrote entries that the group's later batches deleted.
type stockLog struct {
	keys []ledger.Change
	seen map[ledger.Key]bool
}

func (d *stockLog) add(changes []ledger.Change) {
	if d.seen == nil {
		d.seen = make(map[ledger.Key]bool, len(changes))
	}
	for _, c := range changes {
		if !d.seen[c.Key] {
			d.seen[c.Key] = true
			d.keys = append(d.keys, c)
		}
	}
}

// flush logs the current value of every collected key downstream.
func (d *stockLog) flush(tx Tx) error {
	if err := appendStock(tx, d.keys); err != nil {
		return fmt.Errorf("downstream log: %w", err)
	}
	return nil
}

// appendStock logs the current value of every key in changes downstream.
func appendStock(tx Tx, changes []ledger.Change) error {
	seen := make(map[ledger.Key]bool, len(changes))
	for _, c := range changes {
		if seen[c.Key] {
			continue
		}
		seen[c.Key] = true
		ks, _, err := tx.GetKey(c.Key)
		if err != nil {
			return err
		}
		v := protocol.StockValue{Location: c.Key.Location, SKU: c.Key.SKU, Lot: c.Key.Lot, Owner: c.Key.Owner, Status: c.Key.Status, OnHand: ks.OnHand()}
		if err := tx.AppendDown(c.Key.WH, "", protocol.DownStock, StockItemKey(c.Key), v); err != nil {
			return err
		}
	}
	return nil
}
