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
	}
	return "unknown"
}

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
}

// Type implements Message.
func (*OpBatch) Type() MsgType { return TypeOps }

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
	DownStock     DownKind = 1 // StockValue: latest server value of a key
	DownOp        DownKind = 2 // Op issued by the server (resolution, adjustment)
	DownCatalog   DownKind = 3 // catalog item
	DownLocation  DownKind = 4 // location master data
	DownThreshold DownKind = 5 // reorder threshold
	DownPO        DownKind = 6 // purchase order
	DownTask      DownKind = 7 // pick or count task
	DownSettings  DownKind = 8 // warehouse settings (strict catalog, skew window)
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
	Location string `cbor:"1,keyasint"`
	SKU      string `cbor:"2,keyasint"`
	Lot      string `cbor:"3,keyasint,omitempty"`
	OnHand   int64  `cbor:"4,keyasint"`
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
	Status    string `cbor:"11,keyasint,omitempty" json:"status,omitempty"` // "open" (default), "done", "cancelled"
}
