package badger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/diskspace"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/apply"
)

// backend is apply.Backend over the database: Badger's serializable
// transactions need no locks, so Scope only names what a transaction
// touches, and a transaction that lost a race runs again.
type backend struct {
	db   *bdb.DB
	disk *diskspace.Guard
}

// maxAttempts bounds the runs of a transaction that keeps losing races.
// Each run that loses waits a little longer (up to 20 ms, jittered), so
// the budget is about two seconds of waiting: enough for a writer that
// shares one hot key (a records counter) with many others, each holding
// it for one synced commit, which on a busy disk takes tens of
// milliseconds. (20 runs with no cap — about 0.2 s — ran out for 8
// writers on one counter on a loaded machine.)
const maxAttempts = 100

// update runs f in a read-write transaction, again (after a short,
// growing, jittered pause, so that writers racing for one key take turns)
// when it lost a race with another writer.
// It refuses (diskspace.ErrFull) while the data disk is below its
// reserve: Badger would crash writing into a mapped page the disk cannot
// back.
func update(disk *diskspace.Guard, db *bdb.DB, f func(txn *bdb.Txn) error) error {
	if err := disk.Err(); err != nil {
		return err
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err := db.Update(f)
		if errors.Is(err, bdb.ErrTxnTooBig) {
			return fmt.Errorf("%w: %w", store.ErrTxnTooBig, err)
		}
		if !errors.Is(err, bdb.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(min(attempt+1, 20))*time.Millisecond + time.Duration(rand.IntN(1000))*time.Microsecond)
	}
	return store.ErrConflict
}

func (b backend) Update(_ context.Context, _ apply.Scope, f func(apply.Tx) error) error {
	return update(b.disk, b.db, func(txn *bdb.Txn) error {
		t := &tx{txnLedger: txnLedger{txn: txn, deferKeys: true}}
		if err := f(t); err != nil {
			return err
		}
		return t.flushKeys()
	})
}

func (b backend) View(_ context.Context, f func(apply.Tx) error) error {
	return b.db.View(func(txn *bdb.Txn) error { return f(&tx{txnLedger: txnLedger{txn: txn}}) })
}

// tx is apply.Tx over one Badger transaction.
type tx struct {
	txnLedger
	reads   map[string]cachedRead // Records' read cache
	records store.Tx              // Records' answer
}

var _ apply.Tx = (*tx)(nil)

func (t *tx) Watermark(wh, gw string) (uint64, error) { return getU64(t.txn, wmKey(wh, gw)) }

func (t *tx) SetWatermark(wh, gw string, wm uint64) error {
	return t.txn.Set(wmKey(wh, gw), []byte(u64(wm)))
}

func (t *tx) PutOp(wh, gw string, op *protocol.Op, enc []byte) error {
	return t.txn.Set(opKey(pfxOp, wh, gw, op.Seq), enc)
}

func (t *tx) Quarantined(wh, gw string, seq uint64) (store.Quarantined, bool, error) {
	var q store.Quarantined
	ok, err := t.getCBOR(opKey(pfxQuar, wh, gw, seq), &q)
	return q, ok, err
}

func (t *tx) PutQuarantined(q store.Quarantined) error {
	return putCBOR(t.txn, opKey(pfxQuar, q.Warehouse, q.Gateway, q.Seq), q)
}

func (t *tx) AppendDown(wh, target string, kind protocol.DownKind, itemKey string, body any) error {
	return appendDown(t.txn, wh, target, kind, itemKey, body)
}

func (t *tx) PutTask(wh string, task protocol.Task) error {
	key := []byte(pfxTask + join(wh, task.ID))
	var old protocol.Task
	ok, err := t.getCBOR(key, &old)
	if err != nil {
		return err
	}
	if err := t.indexTask(wh, old, ok, task); err != nil {
		return fmt.Errorf("count task index: %w", err)
	}
	return putCBOR(t.txn, key, task)
}

func (t *tx) PutOrder(o store.Order) error {
	if err := putCBOR(t.txn, []byte(pfxOrder+join(o.Warehouse, o.ID)), o); err != nil {
		return err
	}
	for _, l := range o.Lines {
		if err := putI64(t.txn, []byte(lineKey(pfxOrderLine, o.Warehouse, o.ID, l.Line)), l.Qty); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Records() store.Tx {
	if t.records == nil { // once per transaction: the master-data check asks per op
		t.reads = map[string]cachedRead{}
		t.records = recordTx{txn: t.txn, reads: t.reads, keys: &t.txnLedger}
	}
	return t.records
}

func (t *tx) Applied(string, string, *store.Result) error { return nil }
