// Package store is the contract of the server's durable state: per-gateway
// watermarks, the op log, quarantined ops, the materialised ledger, the
// downstream log and the records beside them. Store is what every backend
// offers; what a committed batch does is written once, in store/apply, and
// the backends (store/badger, the embedded default, and store/postgres)
// only keep the data.
package store

import (
	"context"
	"errors"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// ErrConflict reports a transaction that lost a race; the caller retries.
var ErrConflict = errors.New("store: transaction conflict")

// ErrTxnTooBig reports a transaction larger than the backend takes at
// once; nothing of it was written. A caller that can split its work does.
var ErrTxnTooBig = errors.New("store: transaction too big")

// Store is what the ingest and the API need from a backend.
type Store interface {
	// Epoch identifies this store's state; it changes when the state is lost.
	Epoch() string
	// ApplyBatch applies the sequence rule to b and, for Apply, merges the
	// new ops, quarantines invalid ones, and moves the watermark — all in
	// one durable transaction.
	ApplyBatch(ctx context.Context, wh, gw string, b *protocol.OpBatch) (Result, error)
	// ApplyBatches applies batches (of any gateways) in order, as
	// ApplyBatch would one after the other, in one durable transaction
	// where the backend allows (group commit): results[i] is batches[i]'s.
	// Each batch's verdict is judged against the watermark the batches
	// before it left, so exactly-once holds at every batch boundary.
	ApplyBatches(ctx context.Context, batches []Batch) ([]Result, error)
	// Watermark returns the highest seq applied for wh/gw.
	Watermark(ctx context.Context, wh, gw string) (uint64, error)
	// Stock lists on-hand values matching q.
	Stock(ctx context.Context, q StockQuery) ([]StockRow, error)
	// StockEach calls fn with each on-hand value matching q, in Stock's
	// order, from one snapshot, without holding them all: for readers of
	// every key (a model loading millions). An error from fn stops it and
	// is returned.
	StockEach(ctx context.Context, q StockQuery, fn func(StockRow) error) error
	// Quarantined lists ops kept aside.
	Quarantined(ctx context.Context, wh string) ([]Quarantined, error)
	// AppendDown adds a downstream item for every gateway of wh (target "")
	// or for one gateway, replacing the older entry of the same item key.
	AppendDown(ctx context.Context, wh, target string, kind protocol.DownKind, itemKey string, body any) error
	// DownFrom reads wh's downstream log after seq `after` as gw sees it.
	DownFrom(ctx context.Context, wh, gw string, after uint64, max int) (DownRead, error)
	// UpdateGateway changes a gateway's record atomically.
	UpdateGateway(ctx context.Context, wh, gw string, f func(*Gateway)) error
	// Gateways lists gateway records with their watermarks.
	Gateways(ctx context.Context, wh string) ([]Gateway, error)
	// SetOpCheck installs a master-data check run on every op in the
	// apply transaction (with a read-only Tx over it); an op it rejects
	// is quarantined with its error as reason. Call it before applying.
	SetOpCheck(f func(tx Tx, wh string, op *protocol.Op) error)
	Actions
	Records
	Close() error
}

// Batch is an op batch of one gateway, for ApplyBatches.
type Batch struct {
	WH, GW string
	B      *protocol.OpBatch
}

// Result is the outcome of ApplyBatch.
type Result struct {
	Verdict     protocol.Verdict
	WM          uint64               // watermark after the call
	Applied     int                  // ops merged into the ledger
	Quarantined int                  // ops kept aside
	Changes     []ledger.Change      // keys whose on-hand the batch touched
	Conflicts   []conflicts.Conflict // conflicts the batch created or changed
}

// Issued is the outcome of one op of IssueOps: the op as stamped (its
// server seq) when it was applied, or why it was refused (Err: it wrote
// nothing, and the other ops of the call applied), or Skipped when the
// Shape dropped it.
type Issued struct {
	Op      protocol.Op
	Err     error
	Skipped bool
}

// Shape sees an op of IssueOps inside its transaction, with whether the
// stock key it names has records yet, and may rewrite it; returning false
// drops it (nothing written).
type Shape func(op *protocol.Op, known bool) bool

// StockQuery filters Stock; empty fields match everything.
type StockQuery struct {
	Warehouse, Location, SKU, Lot string
	Owner                         string // "": every owner
	// NonZero leaves out the keys whose on-hand is 0 (before Limit).
	NonZero bool
	Limit   int
}

// Matches reports whether k passes the query's filters.
func (q StockQuery) Matches(k ledger.Key) bool {
	return (q.Warehouse == "" || k.WH == q.Warehouse) && (q.Location == "" || k.Location == q.Location) &&
		(q.SKU == "" || k.SKU == q.SKU) && (q.Lot == "" || k.Lot == q.Lot) && (q.Owner == "" || k.Owner == q.Owner)
}

// StockGroup names the stock keys of one sku at one location of a
// warehouse: every lot, owner and status. Its fields match exactly (an
// empty field is not a wildcard, unlike StockQuery's).
type StockGroup struct{ Warehouse, Location, SKU string }

// StockRow is one stock key and its on-hand. Status is "available" for
// sellable stock; Owner is "" when the warehouse has no owners.
type StockRow struct {
	Warehouse string               `json:"warehouse"`
	Location  string               `json:"location"`
	SKU       string               `json:"sku"`
	Lot       string               `json:"lot"`
	Owner     string               `json:"owner"`
	Status    protocol.StockStatus `json:"status"`
	OnHand    int64                `json:"on_hand"`
}

// Key returns the row's stock key.
func (r StockRow) Key() ledger.Key {
	return ledger.Key{WH: r.Warehouse, Location: r.Location, SKU: r.SKU, Lot: r.Lot, Owner: r.Owner, Status: r.Status}
}

// RowOf is the stock row of k with on-hand n.
func RowOf(k ledger.Key, n int64) StockRow {
	return StockRow{Warehouse: k.WH, Location: k.Location, SKU: k.SKU, Lot: k.Lot, Owner: k.Owner, Status: k.Status, OnHand: n}
}

// Quarantined is an op that could not be applied, with the reason.
type Quarantined struct {
	Warehouse string      `json:"warehouse"`
	Gateway   string      `json:"gateway"`
	Seq       uint64      `json:"seq"`
	Reason    string      `json:"reason"`
	Op        protocol.Op `json:"op"`
	Status    string      `json:"status,omitempty"` // "", "reapplied", "rejected"
	By        string      `json:"by,omitempty"`
}

// Actions are the operations behind the conflict, history, order, task and
// quarantine endpoints.
type Actions interface {
	IssueOp(ctx context.Context, wh string, op protocol.Op) (protocol.Op, Result, error)
	// IssueOps applies server-origin ops of one warehouse in one
	// transaction (a chunk of an import); see Issued.
	IssueOps(ctx context.Context, wh string, ops []protocol.Op, shape Shape) ([]Issued, Result, error)
	Conflicts(ctx context.Context, q conflicts.Query) ([]conflicts.Conflict, error)
	ResolveConflict(ctx context.Context, id string, r Resolution) (ResolveResult, error)
	History(ctx context.Context, k ledger.Key) ([]HistoryEntry, error)
	PutOrder(ctx context.Context, o Order) ([]conflicts.Conflict, error)
	GetOrder(ctx context.Context, wh, id string) (Order, map[uint32]int64, error)
	Tasks(ctx context.Context, wh string) ([]protocol.Task, error)
	QuarantineAction(ctx context.Context, wh, gw string, seq uint64, action, by string) (Result, error)
}
