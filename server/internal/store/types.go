package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// ErrNotFound reports an unknown record.
var ErrNotFound = errors.New("not found")

// KV is the ordered key-value space in which the packages of this module
// that keep records beside the ledger (master data, pick routing, orders,
// alerts, webhooks) store them, each under its own key prefix ("md/",
// "or/", "al/", "wh/", …). Keys compare byte-wise in both backends.
type KV interface {
	// Get returns the value of k (a copy the caller may keep).
	Get(k []byte) (v []byte, ok bool, err error)
	Set(k, v []byte) error
	Delete(k []byte) error
	// Scan calls fn for every key with prefix in key order (descending
	// with Reverse), with the whole key; k and v are the caller's to keep.
	// fn returning ErrStopScan ends the scan without error. fn may read
	// and write through the same transaction.
	Scan(prefix []byte, o ScanOptions, fn func(k, v []byte) error) error
}

// ScanOptions tune KV.Scan.
type ScanOptions struct {
	Reverse  bool
	KeysOnly bool // v is nil
}

// ErrStopScan ends a KV.Scan early.
var ErrStopScan = errors.New("store: stop scan")

// Tx is one transaction over the records beside the ledger (KV) and the
// parts of the ledger those records work with, so that a record, the
// downstream item carrying it and the conflicts it raises are written
// together or not at all. Both backends implement it (Records).
type Tx interface {
	KV
	// AppendDown adds a downstream item for every gateway of wh (target
	// "") or for one gateway, replacing the older entry of the same key.
	AppendDown(wh, target string, kind protocol.DownKind, itemKey string, body any) error
	// RaiseConflict records a conflict with conflicts.Raise's lifecycle
	// rules and reports whether anything was written.
	RaiseConflict(c conflicts.Conflict) (conflicts.Conflict, bool, error)
	// Watermark returns the upstream watermark of wh/gw.
	Watermark(wh, gw string) (uint64, error)
	// Task returns a task of wh.
	Task(wh, id string) (protocol.Task, bool, error)
	// PutTask stores a task of wh (listed by Tasks) and sends it
	// downstream to target ("" for every gateway of wh), compacted per id.
	PutTask(wh, target string, task protocol.Task) error
	// Tasks lists the tasks of wh.
	Tasks(wh string) ([]protocol.Task, error)
	// ScanOps calls fn for every applied op of wh (every gateway, and the
	// server's own), in (gateway, seq) order: for occasional work such as
	// closing a receipt.
	ScanOps(wh string, fn func(gw string, op *protocol.Op) error) error
	// Origin returns the earliest positive delta of k and the op behind it.
	Origin(k ledger.Key) (Origin, bool, error)
	// Stock lists the on-hand of wh's keys of sku (every sku when empty).
	Stock(wh, sku string) ([]StockRow, error)
	// StockWhere lists the stock matching q.
	StockWhere(q StockQuery) ([]StockRow, error)
	// StockGroups lists every stock key of each group (every lot, owner
	// and status of its sku at its location), in one read: one statement
	// on PostgreSQL, however many groups.
	StockGroups(groups []StockGroup) ([]StockRow, error)
	// PutSettings writes the settings the conflict detector reads.
	PutSettings(wh string, st Settings) error
	// PutOrder creates or replaces an order and its line quantities, and
	// re-checks over-picks of its lines (picks may have come first).
	PutOrder(o Order) ([]conflicts.Conflict, error)
	// OrderPicks returns every pick recorded against order id of wh.
	OrderPicks(wh, id string) ([]OrderPick, error)
}

// Records runs transactions over Tx. Update retries f when it lost a race
// with another writer (ingest, API, another replica), so f must be safe to
// run again; it returns ErrConflict after repeated losses.
type Records interface {
	Update(f func(Tx) error) error
	View(f func(Tx) error) error
}

// Origin is the earliest op, in merge order, that added to a stock key:
// when its stock first came in (FIFO) and the expiry it carried (FEFO).
type Origin struct {
	HLC    protocol.HLC
	Expiry string
	Kind   protocol.OpKind
}

// GetCBOR reads k's CBOR value into v and reports whether k exists.
func GetCBOR(kv KV, k []byte, v any) (bool, error) {
	b, ok, err := kv.Get(k)
	if err != nil || !ok {
		return false, err
	}
	return true, protocol.Unmarshal(b, v)
}

// PutCBOR writes v at k in deterministic CBOR.
func PutCBOR(kv KV, k []byte, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	return kv.Set(k, b)
}

// GetU64 reads k's big-endian uint64 (0 when k does not exist).
func GetU64(kv KV, k []byte) (uint64, error) {
	b, ok, err := kv.Get(k)
	if err != nil || !ok {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("corrupt value at %q: %d bytes, want 8", k, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Resolution is a person's decision on a conflict.
type Resolution struct {
	Action string // accept, adjust, recount
	By     string
	// Qty is the signed adjustment for "adjust" (default: bring a
	// negative key back to 0).
	Qty  int64
	HLC  protocol.HLC
	Note string
}

// ResolveResult is what resolving did.
type ResolveResult struct {
	Conflict conflicts.Conflict `json:"conflict"`
	Op       *protocol.Op       `json:"op,omitempty"`   // the adjust op issued
	Task     *protocol.Task     `json:"task,omitempty"` // the count task sent
	Result   Result             `json:"-"`
}

// HistoryEntry is one op behind a stock number, with the running on-hand
// after it in merge order.
type HistoryEntry struct {
	Gateway  string         `json:"gateway"`
	Seq      uint64         `json:"seq"`
	HLC      protocol.HLC   `json:"hlc"`
	At       string         `json:"at"`
	Kind     string         `json:"kind"`
	Qty      int64          `json:"qty"` // signed effect on the key, or the counted qty
	Count    bool           `json:"count"`
	OnHand   int64          `json:"on_hand"`
	Device   string         `json:"device,omitempty"`
	Operator string         `json:"operator,omitempty"`
	Raw      []string       `json:"raw,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Refs     *protocol.Refs `json:"refs,omitempty"`
	SSCC     string         `json:"sscc,omitempty"` // the pallet the units came or moved with
}

// Describe fills the entry's fields that come from the op itself.
func (h *HistoryEntry) Describe(op protocol.Op) {
	h.Kind, h.Device, h.Operator, h.Raw, h.Reason, h.Refs, h.SSCC = op.Kind.String(), op.Device, op.Operator, op.Raw, op.Reason, op.Refs, op.SSCC
}

// OrderLine is one line of a customer order. Picked and Reserved are
// computed by the order model and never stored.
type OrderLine struct {
	Line uint32 `json:"line" cbor:"1,keyasint"`
	SKU  string `json:"sku" cbor:"2,keyasint"`
	Lot  string `json:"lot,omitempty" cbor:"3,keyasint,omitempty"`
	Qty  int64  `json:"qty" cbor:"4,keyasint"`
	// Picked is the quantity picks against the line took.
	Picked int64 `json:"picked" cbor:"-"`
	// Reserved is what the line still holds back from available-to-sell.
	Reserved int64 `json:"reserved" cbor:"-"`
	// Elsewhere is what of the line other warehouses ship: the order's
	// parts there (Order.Parts) carry it. Backordered is what of the line
	// waits for stock after a short pick found no other bin or warehouse
	// for it. Neither is reserved here.
	Elsewhere   int64 `json:"elsewhere,omitempty" cbor:"5,keyasint,omitempty"`
	Backordered int64 `json:"backordered,omitempty" cbor:"6,keyasint,omitempty"`
}

// Here is what of the line this warehouse ships: its quantity less what
// other warehouses ship and what waits for stock.
func (l *OrderLine) Here() int64 { return max(l.Qty-l.Elsewhere-l.Backordered, 0) }

// OrderStatus is where an order is in its life (the order model's
// constants: orders.StatusOpen, …).
type OrderStatus string

// Order is a customer order of one warehouse: the one record the order
// model writes and the over-pick detector reads. Fields 1–5 are what the
// detector needs (and all an order written by PutOrder alone has); 6–10
// are the order model's.
type Order struct {
	Warehouse string      `json:"warehouse" cbor:"1,keyasint"`
	ID        string      `json:"id" cbor:"2,keyasint"`
	Channel   string      `json:"channel" cbor:"3,keyasint,omitempty"`
	Lines     []OrderLine `json:"lines" cbor:"4,keyasint"`
	Status    OrderStatus `json:"status" cbor:"5,keyasint"`
	// ExternalID is the channel's id of the order (its idempotency key).
	ExternalID string `json:"external_id" cbor:"6,keyasint,omitempty"`
	CreatedMS  int64  `json:"created_ms" cbor:"7,keyasint,omitempty"`
	UpdatedMS  int64  `json:"updated_ms" cbor:"8,keyasint,omitempty"`
	// Short lists the skus whose reservation could not be met when the
	// order was taken; each raised an oversell conflict.
	Short []string `json:"short,omitempty" cbor:"9,keyasint,omitempty"`
	// Seq is the reservation sequence after the order's last change: every
	// availability snapshot with Seq ≥ it accounts for the order.
	Seq uint64 `json:"seq" cbor:"10,keyasint,omitempty"`
	// ExpiresMS is when a checkout hold (status "held") returns its units
	// to the pool.
	ExpiresMS int64 `json:"expires_ms,omitempty" cbor:"11,keyasint,omitempty"`
	// Hold names, on an order, the checkout hold it converted, and on a
	// converted hold, the order that took it over.
	Hold string `json:"hold,omitempty" cbor:"12,keyasint,omitempty"`
	// Owner is the owner of the order's skus' items in master data (all
	// lines share one); "" when they have none.
	Owner string `json:"owner,omitempty" cbor:"13,keyasint,omitempty"`
	// SSCC is the outbound label (GS1 AI 00) scanned when the order was
	// shipped by a pack session; ShippedBy says where: "gateway/device"
	// and the operator when one was logged in.
	SSCC      string `json:"sscc,omitempty" cbor:"14,keyasint,omitempty"`
	ShippedBy string `json:"shipped_by,omitempty" cbor:"15,keyasint,omitempty"`
	// Parts lists the other warehouses that ship part of the order (the
	// same id there, PartOf naming this warehouse): what one warehouse
	// could not meet was allocated to another of the same owner.
	Parts  []string `json:"parts,omitempty" cbor:"16,keyasint,omitempty"`
	PartOf string   `json:"part_of,omitempty" cbor:"17,keyasint,omitempty"`
}

// Reserved returns the order's open reservation per sku.
func (o *Order) Reserved() map[string]int64 {
	out := map[string]int64{}
	for _, l := range o.Lines {
		if l.Reserved > 0 {
			out[l.SKU] += l.Reserved
		}
	}
	return out
}

type orderFields Order // Order without its decoder

// legacyOrder is how the order model wrote orders before they had one type
// (external id at 4, lines at 5, status at 6); records written then still
// decode.
type legacyOrder struct {
	Warehouse  string      `cbor:"1,keyasint"`
	ID         string      `cbor:"2,keyasint"`
	Channel    string      `cbor:"3,keyasint"`
	ExternalID string      `cbor:"4,keyasint"`
	Lines      []OrderLine `cbor:"5,keyasint"`
	Status     OrderStatus `cbor:"6,keyasint"`
	CreatedMS  int64       `cbor:"7,keyasint"`
	UpdatedMS  int64       `cbor:"8,keyasint"`
	Short      []string    `cbor:"9,keyasint"`
	Seq        uint64      `cbor:"10,keyasint"`
}

// UnmarshalCBOR decodes an order in either layout: the legacy one has a
// text string at key 4 where the current one has the lines' array.
func (o *Order) UnmarshalCBOR(b []byte) error {
	var f orderFields
	err := protocol.Unmarshal(b, &f)
	if err == nil {
		*o = Order(f)
		return nil
	}
	var l legacyOrder
	if protocol.Unmarshal(b, &l) != nil || l.ExternalID == "" {
		return err
	}
	*o = Order{Warehouse: l.Warehouse, ID: l.ID, Channel: l.Channel, Lines: l.Lines, Status: l.Status,
		ExternalID: l.ExternalID, CreatedMS: l.CreatedMS, UpdatedMS: l.UpdatedMS, Short: l.Short, Seq: l.Seq}
	return nil
}

// OrderPick is one pick op recorded against an order: the line it named
// (0 when the pick named the order only) and the item it took.
type OrderPick struct {
	Line    uint32
	SKU     string
	Lot     string
	Qty     int64
	Gateway string
	Seq     uint64
}

// OrderRef names an order of a warehouse.
type OrderRef struct{ Warehouse, ID string }

// Settings are per-warehouse options that change how ops are judged.
type Settings struct {
	SkewWindowMS  int64 `cbor:"1,keyasint,omitempty" json:"skew_window_ms,omitempty"`
	StrictCatalog bool  `cbor:"2,keyasint,omitempty" json:"strict_catalog,omitempty"`
}

// SkewWindow is the window as a duration.
func (s Settings) SkewWindow() time.Duration { return time.Duration(s.SkewWindowMS) * time.Millisecond }

// DownRead is a slice of a warehouse's downstream log as one gateway sees it.
type DownRead struct {
	Items []protocol.DownItem
	First uint64 // after+1
	Last  uint64 // last seq covered (≥ First when Items or skipped entries exist)
	Head  uint64 // log head at read time
	UpWM  uint64 // the gateway's upstream watermark in the same snapshot
}

// Gateway is the server's record of one gateway.
type Gateway struct {
	Warehouse    string `cbor:"1,keyasint" json:"warehouse"`
	Gateway      string `cbor:"2,keyasint" json:"gateway"`
	Online       bool   `cbor:"3,keyasint" json:"online"`
	LastSeen     int64  `cbor:"4,keyasint" json:"last_seen_ms"`
	ReportedSeq  uint64 `cbor:"5,keyasint" json:"reported_last_seq"`
	OutboxDepth  uint64 `cbor:"6,keyasint" json:"outbox_depth"`
	AgentVersion string `cbor:"7,keyasint" json:"agent_version"`
	Protocol     uint   `cbor:"8,keyasint" json:"protocol_version"`
	DownAcked    uint64 `cbor:"9,keyasint" json:"down_acked"`
	LastApplied  int64  `cbor:"10,keyasint" json:"last_applied_ms"`
	WM           uint64 `cbor:"-" json:"watermark"`
}
