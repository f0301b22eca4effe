package protocol

import "github.com/fxamacker/cbor/v2"

// Version is the protocol version this build speaks. A message with another
// version is rejected with ErrVersion.
const Version = 1

// MsgType identifies a message; it is key 1 of every message map.
type MsgType uint8

// Message types. See SPEC.md for each one's fields.
const (
	TypeHello   MsgType = 1 // agent → server, up topic
	TypeOps     MsgType = 2 // agent → server, up topic: a batch of operations
	TypeAck     MsgType = 3 // server → agent, down topic: upstream watermark
	TypeDown    MsgType = 4 // server → agent, down topic: downstream batch
	TypeDownAck MsgType = 5 // agent → server, up topic: downstream watermark
	TypeStatus  MsgType = 6 // agent, status topic (retained)
	// TypeOpsDeflate is an ops message compressed with DEFLATE (deflate.go),
	// agent → server, up topic, only to a server whose ack announced
	// FeatureOpsDeflate. Decode returns it as the *OpBatch it carries.
	TypeOpsDeflate MsgType = 7
)

// String names the message type as SPEC.md does.
func (t MsgType) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeOps:
		return "ops"
	case TypeAck:
		return "ack"
	case TypeDown:
		return "down"
	case TypeDownAck:
		return "down-ack"
	case TypeStatus:
		return "status"
	case TypeOpsDeflate:
		return "ops-deflate"
	}
	return "unknown"
}

// Features is a set of optional protocol features a server accepts,
// announced in every Ack (key 8). A sender uses a feature only after an
// ack on its current connection announced it; bits it does not know are
// ignored, and an absent key means none.
type Features uint64

// Feature bits (SPEC.md §5, ack key 8).
const (
	// FeatureOpsDeflate: the server accepts ops-deflate messages
	// (TypeOpsDeflate), op batches compressed with DEFLATE.
	FeatureOpsDeflate Features = 1 << 0
	// FeatureProbes: the server answers a hello's probe (hello key 11)
	// in the ack's key 9, so a sender can tell which question an ack
	// answers (Window.Answer).
	FeatureProbes Features = 1 << 1
	// FeatureShipNotices: the server takes `ship` notices (NoticeShip) and
	// ships the order they name. An agent puts ship notices in its status
	// only while its connection's latest ack announced it, so an older
	// server, which would acknowledge a notice kind it does not know
	// without acting on it, never receives one (SPEC.md §8, Notices).
	FeatureShipNotices Features = 1 << 2
)

// Has reports whether every feature of x is in f.
func (f Features) Has(x Features) bool { return f&x == x }

// Message is implemented by every message type.
type Message interface {
	Type() MsgType
	// Route returns the warehouse and gateway the message speaks for.
	Route() (wh, gw string)
}

// Header holds the keys every message carries.
type Header struct {
	V  uint    `cbor:"0,keyasint"`
	T  MsgType `cbor:"1,keyasint"`
	WH string  `cbor:"2,keyasint"`
	GW string  `cbor:"3,keyasint"`
}

// Route returns the warehouse and gateway of the header.
func (h Header) Route() (string, string) { return h.WH, h.GW }

// Hello is sent by an agent on every (re)connect.
type Hello struct {
	Header
	AgentVersion string `cbor:"4,keyasint,omitempty"`
	LastSeq      uint64 `cbor:"5,keyasint"`           // highest seq the agent has committed
	AckedSeq     uint64 `cbor:"6,keyasint"`           // last upstream watermark the agent saw acked
	DownSeq      uint64 `cbor:"7,keyasint"`           // highest downstream seq the agent applied
	Epoch        string `cbor:"8,keyasint,omitempty"` // server epoch the agent last saw
	HLC          HLC    `cbor:"9,keyasint"`
	// FirstSeq is the oldest seq the agent still holds and can resend
	// (its retention, SPEC.md §6.1); 0 (absent): not stated, as from an
	// agent older than retention. A server whose watermark is below
	// FirstSeq−1 records the seqs in between as lost-ops and moves its
	// watermark to FirstSeq−1.
	FirstSeq uint64 `cbor:"10,keyasint,omitempty"`
	// Probe, when not 0, asks the server to name it in its answer (Ack
	// Answers): a sender whose acks are late asks so, and learns what the
	// server lacks of what it sent before asking (SPEC.md §6).
	Probe uint64 `cbor:"11,keyasint,omitempty"`
}

// Type implements Message.
func (*Hello) Type() MsgType { return TypeHello }

// OpBatch carries consecutive operations first..last of one gateway.
type OpBatch struct {
	Header
	First uint64 `cbor:"4,keyasint"`
	Last  uint64 `cbor:"5,keyasint"`
	Ops   []Op   `cbor:"6,keyasint"`
	HLC   HLC    `cbor:"7,keyasint"`
	// Deflate is the wire form, not content: when set, Encode sends the
	// batch as an ops-deflate message (deflate.go) — only to a server whose
	// ack announced FeatureOpsDeflate; Decode sets it when the batch
	// arrived in that form. The ops are the same either way.
	Deflate bool `cbor:"-"`
	// Received is, for a batch Decode made, each op as it arrived:
	// Received[i] is the CBOR data item of Ops[i], byte for byte as the
	// sender encoded it (for ops-deflate, as it was inside the inflated
	// data), in a buffer of the batch's own. A receiver may keep these
	// bytes instead of encoding Ops[i] again, as long as it has not
	// changed Ops[i]. Nil for a batch made any other way; Encode ignores
	// it.
	Received []RawOp `cbor:"-"`
}

// Type implements Message.
func (*OpBatch) Type() MsgType { return TypeOps }

// RawOpBatch is an OpBatch whose ops are already encoded: each one the
// CBOR of an Op (Marshal), as a gateway's outbox keeps it. Encode frames
// it around those bytes without decoding them, into exactly the bytes the
// OpBatch of the same ops encodes to (the wire has one form: ops, or
// ops-deflate when Deflate is set); Decode returns it as an OpBatch.
type RawOpBatch struct {
	Header
	First   uint64  `cbor:"4,keyasint"`
	Last    uint64  `cbor:"5,keyasint"`
	Ops     []RawOp `cbor:"6,keyasint"`
	HLC     HLC     `cbor:"7,keyasint"`
	Deflate bool    `cbor:"-"`
}

// Type implements Message.
func (*RawOpBatch) Type() MsgType { return TypeOps }

// RawOp is one op's CBOR (Marshal of an Op), encoded as it is.
type RawOp []byte

// MarshalCBOR implements cbor.Marshaler: the bytes themselves, checked to
// be one well-formed CBOR item.
func (r RawOp) MarshalCBOR() ([]byte, error) { return cbor.RawMessage(r).MarshalCBOR() }

// Ack tells an agent the server's watermark for it: every op with seq ≤ WM
// is durably applied.
type Ack struct {
	Header
	WM    uint64 `cbor:"4,keyasint"`
	Epoch string `cbor:"5,keyasint"`
	HLC   HLC    `cbor:"6,keyasint"`
	// Error, when set, explains why the message being answered was not
	// applied (malformed, wrong identity, gap). The watermark still holds.
	Error string `cbor:"7,keyasint,omitempty"`
	// Features are the optional features the server accepts (SPEC.md §5);
	// agents use one only after an ack on the current connection named it.
	Features Features `cbor:"8,keyasint,omitempty"`
	// Answers is the probe of the hello this ack answers (0: none).
	Answers uint64 `cbor:"9,keyasint,omitempty"`
}

// Type implements Message.
func (*Ack) Type() MsgType { return TypeAck }

// DownBatch carries downstream items covering seqs First..Last for one
// gateway. Items may be sparse inside the range (the server compacts stock
// to latest value per key); an agent whose downstream watermark is dw applies
// the batch when First ≤ dw+1 ≤ Last+... per the shared Sequence rule.
type DownBatch struct {
	Header
	First uint64     `cbor:"4,keyasint"`
	Last  uint64     `cbor:"5,keyasint"`
	Items []DownItem `cbor:"6,keyasint"`
	Epoch string     `cbor:"7,keyasint"`
	UpWM  uint64     `cbor:"8,keyasint"` // server's upstream watermark for this gateway when the batch was built
	HLC   HLC        `cbor:"9,keyasint"`
}

// Type implements Message.
func (*DownBatch) Type() MsgType { return TypeDown }

// DownAck tells the server the agent's downstream watermark.
type DownAck struct {
	Header
	DownWM uint64 `cbor:"4,keyasint"`
	Epoch  string `cbor:"5,keyasint"`
}

// Type implements Message.
func (*DownAck) Type() MsgType { return TypeDownAck }

// Status is an agent's retained status; its last will is the same message
// with Online false.
type Status struct {
	Header
	Online       bool           `cbor:"4,keyasint"`
	OutboxDepth  uint64         `cbor:"5,keyasint"`
	LastSeq      uint64         `cbor:"6,keyasint"`
	AckedSeq     uint64         `cbor:"7,keyasint"`
	AgentVersion string         `cbor:"8,keyasint,omitempty"`
	At           int64          `cbor:"9,keyasint"` // Unix ms
	Devices      []DeviceStatus `cbor:"10,keyasint,omitempty"`
	// Notices are the gateway's records the server has not confirmed yet
	// (receipt and task closes, local reorder alerts); repeated in every
	// status until a DownNoticeAck names them.
	Notices []Notice `cbor:"11,keyasint,omitempty"`
}

// Type implements Message.
func (*Status) Type() MsgType { return TypeStatus }

// DeviceStatus is one scanner or reader in a Status.
type DeviceStatus struct {
	Name      string `cbor:"1,keyasint"`
	Connected bool   `cbor:"2,keyasint"`
}

// DownKind identifies the payload of a DownItem.
type DownKind uint8

// Downstream item kinds. The body of each is specified in SPEC.md.
const (
	DownStock     DownKind = 1  // StockValue: latest server value of a key
	DownOp        DownKind = 2  // Op issued by the server (resolution, adjustment)
	DownCatalog   DownKind = 3  // catalog item
	DownLocation  DownKind = 4  // location master data
	DownThreshold DownKind = 5  // reorder threshold
	DownPO        DownKind = 6  // purchase order
	DownTask      DownKind = 7  // pick or count task
	DownSettings  DownKind = 8  // warehouse settings (strict catalog, skew window)
	DownNoticeAck DownKind = 9  // NoticeAck: the server has taken a gateway's notice
	DownASN       DownKind = 12 // ASN: advance ship notice of one pallet (SSCC)
)

// DownItem is one downstream entry. Body is the CBOR encoding of the
// kind's payload; agents ignore kinds they do not know.
type DownItem struct {
	Seq  uint64          `cbor:"1,keyasint"`
	Kind DownKind        `cbor:"2,keyasint"`
	Body cbor.RawMessage `cbor:"3,keyasint"`
}

// StockValue is the server's on-hand for one stock key.
type StockValue struct {
	Location string      `cbor:"1,keyasint"`
	SKU      string      `cbor:"2,keyasint"`
	Lot      string      `cbor:"3,keyasint,omitempty"`
	OnHand   int64       `cbor:"4,keyasint"`
	Owner    string      `cbor:"5,keyasint,omitempty"`
	Status   StockStatus `cbor:"6,keyasint,omitempty"`
}

// Task is a pick or count task sent to gateways (DownTask). A gateway shows
// open tasks to its operators; TASK:<id> scans reference them.
type Task struct {
	ID        string `cbor:"1,keyasint" json:"id"`
	Kind      string `cbor:"2,keyasint" json:"kind"` // "count", "pick", "return"
	Location  string `cbor:"3,keyasint,omitempty" json:"location,omitempty"`
	SKU       string `cbor:"4,keyasint,omitempty" json:"sku,omitempty"`
	Lot       string `cbor:"5,keyasint,omitempty" json:"lot,omitempty"`
	Qty       int64  `cbor:"6,keyasint,omitempty" json:"qty,omitempty"`
	Order     string `cbor:"7,keyasint,omitempty" json:"order,omitempty"`
	OrderLine uint32 `cbor:"8,keyasint,omitempty" json:"order_line,omitempty"`
	Conflict  string `cbor:"9,keyasint,omitempty" json:"conflict,omitempty"`
	Reason    string `cbor:"10,keyasint,omitempty" json:"reason,omitempty"`
	Status    string `cbor:"11,keyasint,omitempty" json:"status,omitempty"` // "open" (default), "done", "short", "cancelled"
	// Picked is what the gateways picked against a pick task so far.
	Picked int64 `cbor:"12,keyasint,omitempty" json:"picked,omitempty"`
	// Expiry is the expiry date (YYYY-MM-DD) of the task's lot, when known.
	Expiry string `cbor:"13,keyasint,omitempty" json:"expiry,omitempty"`
}

// Location types (Location.Type).
const (
	LocDock       = "dock"
	LocStorage    = "storage"
	LocPick       = "pick"
	LocPack       = "pack"
	LocQuarantine = "quarantine"
)

// Item velocities (Item.Velocity), for slotting.
const (
	VelocityFast   = "fast"
	VelocityNormal = "normal"
	VelocitySlow   = "slow"
)

// Item is a catalog entry (DownCatalog), keyed by SKU. A gateway maps every
// listed GTIN-14 to the SKU; with strict catalog settings an unlisted GTIN
// is rejected. One GTIN may be listed by items of different owners (each
// 3PL client has its own sku for it); the gateway tells them apart by the
// location's owner or an OWNER: scan.
type Item struct {
	SKU         string   `cbor:"1,keyasint" json:"sku"`
	GTINs       []string `cbor:"2,keyasint,omitempty" json:"gtins,omitempty"`
	Description string   `cbor:"3,keyasint,omitempty" json:"description,omitempty"`
	TrackLot    bool     `cbor:"4,keyasint,omitempty" json:"track_lot,omitempty"`    // every receipt needs a lot
	TrackExpiry bool     `cbor:"5,keyasint,omitempty" json:"track_expiry,omitempty"` // lots expire: FEFO picking, expired receipts flagged
	Velocity    string   `cbor:"6,keyasint,omitempty" json:"velocity,omitempty"`     // "fast", "normal" (default), "slow"
	Serialized  bool     `cbor:"7,keyasint,omitempty" json:"serialized,omitempty"`   // units carry RFID tags (EPC → location kept)
	Owner       string   `cbor:"8,keyasint,omitempty" json:"owner,omitempty"`        // the 3PL client the item belongs to; "" without owners
	// MinShelfDays is the minimum remaining shelf life, in days, a lot
	// must have to be received as available or picked (FEFO).
	MinShelfDays int  `cbor:"9,keyasint,omitempty" json:"min_shelf_days,omitempty"`
	Deleted      bool `cbor:"15,keyasint,omitempty" json:"deleted,omitempty"` // tombstone: forget the record
}

// Location is master data of one location (DownLocation), keyed by Code.
type Location struct {
	Code     string `cbor:"1,keyasint" json:"code"`
	Zone     string `cbor:"2,keyasint,omitempty" json:"zone,omitempty"`
	Type     string `cbor:"3,keyasint,omitempty" json:"type,omitempty"` // dock, storage, pick, pack, quarantine
	Sellable bool   `cbor:"4,keyasint,omitempty" json:"sellable,omitempty"`
	// Rank is the distance rank from packing: 1 is nearest; 0 is unranked
	// (sorted last).
	Rank uint32 `cbor:"5,keyasint,omitempty" json:"rank,omitempty"`
	// Owner is the 3PL client whose units the location holds; "" for a
	// location any owner's units may use. At the gateway it tells apart
	// the items of one GTIN held for several owners.
	Owner   string `cbor:"6,keyasint,omitempty" json:"owner,omitempty"`
	Deleted bool   `cbor:"15,keyasint,omitempty" json:"deleted,omitempty"`
}

// Threshold is the reorder threshold of a sku (DownThreshold), keyed by SKU.
type Threshold struct {
	SKU          string `cbor:"1,keyasint" json:"sku"`
	ReorderPoint int64  `cbor:"2,keyasint" json:"reorder_point"`         // alert when on-hand falls to or below this
	ReorderQty   int64  `cbor:"3,keyasint,omitempty" json:"reorder_qty"` // suggested order quantity
	Max          int64  `cbor:"4,keyasint,omitempty" json:"max,omitempty"`
	SafetyStock  int64  `cbor:"5,keyasint,omitempty" json:"safety_stock,omitempty"` // held back from available-to-sell
	// Seasonal overrides apply on the days From..To (UTC, inclusive); the
	// first that covers a day wins.
	Seasonal []SeasonalThreshold `cbor:"6,keyasint,omitempty" json:"seasonal,omitempty"`
	Deleted  bool                `cbor:"15,keyasint,omitempty" json:"deleted,omitempty"`
}

// SeasonalThreshold is a date-bounded override of a Threshold.
type SeasonalThreshold struct {
	From         string `cbor:"1,keyasint" json:"from"` // YYYY-MM-DD
	To           string `cbor:"2,keyasint" json:"to"`   // YYYY-MM-DD, inclusive
	ReorderPoint int64  `cbor:"3,keyasint" json:"reorder_point"`
	ReorderQty   int64  `cbor:"4,keyasint,omitempty" json:"reorder_qty,omitempty"`
	Max          int64  `cbor:"5,keyasint,omitempty" json:"max,omitempty"`
}

// On returns the threshold in effect on day (YYYY-MM-DD).
func (t Threshold) On(day string) Threshold {
	for _, s := range t.Seasonal {
		if s.From <= day && day <= s.To {
			out := t
			out.ReorderPoint, out.ReorderQty, out.Max, out.Seasonal = s.ReorderPoint, s.ReorderQty, s.Max, nil
			return out
		}
	}
	return t
}

// SuggestedOrder is the one reorder suggestion formula, used by every
// alert and endpoint that proposes an order quantity (docs/DESIGN.md,
// "Reorder"). The inventory position is on-hand plus on-order (what open
// purchase orders still expect). With a max set, the suggestion fills the
// position up to max: max − on-hand − on-order. Without one, it is the
// reorder quantity while the position is at or below the reorder point,
// and 0 once enough is on order. It is never negative.
func (t Threshold) SuggestedOrder(onHand, onOrder int64) int64 {
	position := onHand + onOrder
	if t.Max > 0 {
		return max(t.Max-position, 0)
	}
	if position <= t.ReorderPoint {
		return max(t.ReorderQty, 0)
	}
	return 0
}

// POLine is one expected line of a purchase order.
type POLine struct {
	Line uint32 `cbor:"1,keyasint" json:"line"`
	SKU  string `cbor:"2,keyasint" json:"sku"`
	Lot  string `cbor:"3,keyasint,omitempty" json:"lot,omitempty"` // expected lot; another lot is a lot mismatch
	Qty  int64  `cbor:"4,keyasint" json:"qty"`
}

// PurchaseOrder is a purchase order to receive (DownPO), keyed by ID.
type PurchaseOrder struct {
	ID       string   `cbor:"1,keyasint" json:"id"`
	Supplier string   `cbor:"2,keyasint,omitempty" json:"supplier,omitempty"`
	Dock     string   `cbor:"3,keyasint,omitempty" json:"dock,omitempty"` // receiving location; RFID portals there receive against it
	Lines    []POLine `cbor:"4,keyasint" json:"lines"`
	Status   string   `cbor:"5,keyasint,omitempty" json:"status,omitempty"` // "open" (default), "closed", "cancelled"
	Deleted  bool     `cbor:"15,keyasint,omitempty" json:"deleted,omitempty"`
}

// ASN is the advance ship notice of one pallet (DownASN), keyed by its
// SSCC: the lines the pallet carries. Scanning the pallet label in a
// receive session receives every line; moving the pallet by its label
// moves them.
type ASN struct {
	SSCC    string    `cbor:"1,keyasint" json:"sscc"`
	PO      string    `cbor:"2,keyasint,omitempty" json:"po,omitempty"` // the purchase order the lines are received against
	Lines   []ASNLine `cbor:"3,keyasint" json:"lines"`
	Deleted bool      `cbor:"15,keyasint,omitempty" json:"deleted,omitempty"`
}

// ASNLine is one line of a pallet.
type ASNLine struct {
	SKU    string `cbor:"1,keyasint" json:"sku"`
	Lot    string `cbor:"2,keyasint,omitempty" json:"lot,omitempty"`
	Expiry string `cbor:"3,keyasint,omitempty" json:"expiry,omitempty"` // YYYY-MM-DD
	Qty    int64  `cbor:"4,keyasint" json:"qty"`
}

// Settings are a warehouse's options (DownSettings; one per warehouse).
type Settings struct {
	StrictCatalog bool  `cbor:"1,keyasint,omitempty" json:"strict_catalog,omitempty"` // reject GTINs the catalog does not list
	SkewWindowMS  int64 `cbor:"2,keyasint,omitempty" json:"skew_window_ms,omitempty"` // count-race window; 0: 5000
	// OverReceiptPct is the over-receipt allowance in percent of a PO
	// line: receiving more than qty × (100+pct)/100 is flagged.
	OverReceiptPct uint32 `cbor:"3,keyasint,omitempty" json:"over_receipt_pct,omitempty"`
	// NoHoldFlags are the receive flags (Flag*) whose units land
	// available anyway; units with any other flag land on hold where they
	// were received. 0: every flagged unit is held.
	NoHoldFlags uint32 `cbor:"4,keyasint,omitempty" json:"no_hold_flags,omitempty"`
	// NearExpiryDays is how many days before a lot's expiry the server
	// raises its near-expiry alert and lists it (0: 30).
	NearExpiryDays uint32 `cbor:"5,keyasint,omitempty" json:"near_expiry_days,omitempty"`
}

// DefaultNearExpiryDays is Settings.NearExpiryDays when 0.
const DefaultNearExpiryDays = 30

// NearExpiry returns the near-expiry horizon in days.
func (s Settings) NearExpiry() int {
	if s.NearExpiryDays == 0 {
		return DefaultNearExpiryDays
	}
	return int(s.NearExpiryDays)
}

// Notice kinds (Notice.Kind).
const (
	NoticePOClose   = "po-close"   // a receive session against Ref (a PO) was finished
	NoticeTaskClose = "task-close" // a pick or count session against Ref (a task) was finished
	NoticeReorder   = "reorder"    // a pick took SKU to or below its reorder point at this gateway
	// NoticeShip: a pack session checked every picked unit of the order
	// Ref (and recorded the outbound label SSCC, if scanned): ship it.
	NoticeShip = "ship"
)

// Notice is a gateway record that is not an inventory operation: it has no
// effect on stock and is carried in Status until the server confirms it
// with a NoticeAck. The server acts on it once its upstream watermark for
// the gateway reaches Seq, so the ops it summarises are applied first.
type Notice struct {
	ID        string `cbor:"1,keyasint" json:"id"` // unique per gateway
	Kind      string `cbor:"2,keyasint" json:"kind"`
	Seq       uint64 `cbor:"3,keyasint,omitempty" json:"seq,omitempty"`
	At        int64  `cbor:"4,keyasint,omitempty" json:"at,omitempty"` // Unix ms
	Ref       string `cbor:"5,keyasint,omitempty" json:"ref,omitempty"`
	SKU       string `cbor:"6,keyasint,omitempty" json:"sku,omitempty"`
	Location  string `cbor:"7,keyasint,omitempty" json:"location,omitempty"`
	Qty       int64  `cbor:"8,keyasint,omitempty" json:"qty,omitempty"`       // task-close: picked; reorder: on-hand after the pick; ship: units checked
	Threshold int64  `cbor:"9,keyasint,omitempty" json:"threshold,omitempty"` // reorder: the reorder point crossed
	Device    string `cbor:"10,keyasint,omitempty" json:"device,omitempty"`
	Operator  string `cbor:"11,keyasint,omitempty" json:"operator,omitempty"`
	// SSCC is the outbound label (GS1 AI 00) scanned for a shipment (ship).
	SSCC string `cbor:"12,keyasint,omitempty" json:"sscc,omitempty"`
}

// MaxNotices bounds the notices one Status carries.
const MaxNotices = 64

// NoticeAck confirms that the server took a gateway's notice (DownNoticeAck,
// targeted at that gateway).
type NoticeAck struct {
	ID string `cbor:"1,keyasint" json:"id"`
}
