// Package webhooks delivers server events (channel availability, alerts,
// order changes) to HTTP endpoints: one durable FIFO queue per endpoint in
// the server's records (store.Records: Badger or PostgreSQL), a body
// signed with HMAC-SHA256 under the endpoint's secret, retries with
// exponential backoff, and every failure kept where the API can show it.
// A queue survives restarts; an event that carries a coalescing key (a
// channel's availability) replaces the undelivered older event of the same
// key, so a receiver that was down for an hour gets the current
// availability, not an hour of history.
//
// Receivers verify
//
//	X-Shelfsync-Signature: sha256=hex(HMAC-SHA256(secret, body))
//
// and may de-duplicate on X-Shelfsync-Delivery, which is the same on every
// attempt of one delivery, whichever replica makes it.
//
// Replicas: with Config.Shared several servers run a Manager each over one
// database. An event is queued once, by the replica that produced it, for
// the endpoints recorded in the database at that moment (read in the
// queueing transaction). An event that follows from a record (an alert, an
// order change) is queued with EnqueueTx in the transaction that writes
// the record, so that it is queued exactly when the record commits, even
// if the replica dies right after. Each endpoint's queue is delivered by one replica
// at a time, the holder of the endpoint's delivery lease (wh/l/{id}:
// holder and a renewal count, renewed every LeaseTTL/3 while delivering);
// when the holder stops it releases its leases and another replica takes
// over within PollEvery, and when it dies its leases are taken over once
// they have not been renewed for LeaseTTL (default 15 s). Every PollEvery
// (default 1 s) a shared manager re-reads the endpoints — picking up those
// created, changed or deleted on another replica — and looks at every
// queue, so events queued elsewhere are delivered within about PollEvery.
// Delivery is once per event while the database is reachable; a holder
// that cannot renew its lease stops posting before another replica may
// take over, and an attempt cut short that way may reach the receiver a
// second time (same X-Shelfsync-Delivery). Without Shared a manager assumes
// it is alone: no leases, no polling, endpoints read from memory.
package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
)

// Event types an endpoint may subscribe to.
const (
	EventAvailability = "availability"
	EventAlert        = "alert"
	EventConflict     = "conflict"
	EventOrder        = "order"
	EventPing         = "ping"
	EventAll          = "*"
)

// Errors.
var (
	// ErrNotFound reports an unknown endpoint.
	ErrNotFound = errors.New("webhooks: no such endpoint")
	// ErrInvalid reports an invalid endpoint definition; the message says which field.
	ErrInvalid = errors.New("webhooks: invalid endpoint")
)

// Signature header and its value's prefix.
const (
	HeaderSignature = "X-Shelfsync-Signature"
	HeaderEvent     = "X-Shelfsync-Event"
	HeaderDelivery  = "X-Shelfsync-Delivery"
	HeaderAttempt   = "X-Shelfsync-Attempt"
	HeaderTimestamp = "X-Shelfsync-Timestamp"
)

// Sign returns the X-Shelfsync-Signature value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret.
func Verify(secret string, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// Endpoint is a receiver of events.
type Endpoint struct {
	ID  string `json:"id" cbor:"1,keyasint"`
	URL string `json:"url" cbor:"2,keyasint"`
	// Secret signs the bodies; generated when empty at creation.
	Secret string `json:"secret,omitempty" cbor:"3,keyasint"`
	// Events the endpoint receives: availability, alert, conflict, order, or "*".
	Events []string `json:"events" cbor:"4,keyasint"`
	// Channels limits availability events to these channels (empty: all).
	Channels []string `json:"channels,omitempty" cbor:"5,keyasint,omitempty"`
	// Warehouses limits alert, conflict and order events to these warehouses (empty: all).
	Warehouses  []string `json:"warehouses,omitempty" cbor:"6,keyasint,omitempty"`
	Disabled    bool     `json:"disabled,omitempty" cbor:"7,keyasint,omitempty"`
	Description string   `json:"description,omitempty" cbor:"8,keyasint,omitempty"`
	CreatedMS   int64    `json:"created_ms" cbor:"9,keyasint"`
	// Owner, when set, binds the endpoint to one owner (a 3PL's client):
	// it receives only events about that owner's data — its orders, its
	// alerts and conflicts, and each channel's availability limited to its
	// skus — and only a token bound to that owner (or to none) manages it.
	Owner string `json:"owner,omitempty" cbor:"10,keyasint,omitempty"`
}

// Validate checks the endpoint and fills defaults.
func (e *Endpoint) Validate() error {
	var errs []string
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Sprintf("url: %q must be an absolute http:// or https:// URL", e.URL))
	}
	if len(e.Events) == 0 {
		e.Events = []string{EventAll}
	}
	for i, ev := range e.Events {
		switch ev {
		case EventAvailability, EventAlert, EventConflict, EventOrder, EventAll:
		default:
			errs = append(errs, fmt.Sprintf("events[%d]: %q must be availability, alert, conflict, order or *", i, ev))
		}
	}
	if err := protocol.CheckField("owner", e.Owner, false); err != nil {
		errs = append(errs, err.Error())
	}
	if len(e.Secret) > 0 && len(e.Secret) < 16 {
		errs = append(errs, "secret: at least 16 characters (or leave it empty to have one generated)")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// Wants reports whether the endpoint receives ev.
func (e *Endpoint) Wants(ev Event) bool {
	if e.Disabled {
		return false
	}
	if ev.Type == EventPing {
		return false // pings are addressed to one endpoint
	}
	if !slices.Contains(e.Events, EventAll) && !slices.Contains(e.Events, ev.Type) {
		return false
	}
	if ev.Channel != "" && len(e.Channels) > 0 && !slices.Contains(e.Channels, ev.Channel) {
		return false
	}
	if ev.Warehouse != "" && len(e.Warehouses) > 0 && !slices.Contains(e.Warehouses, ev.Warehouse) {
		return false
	}
	if e.Owner != "" { // an owner's endpoint: that owner's events only
		return ev.Owner == e.Owner
	}
	return !ev.OwnerOnly
}

// Event is something to deliver.
type Event struct {
	Type      string
	Channel   string // availability events
	Warehouse string // alert and order events
	// Owner is the owner whose data the event is about ("": no owner's,
	// or every owner's). An endpoint bound to an owner receives only the
	// events of its owner; the others receive every event but OwnerOnly
	// ones.
	Owner string
	// OwnerOnly marks an owner's copy of an event made for the endpoints
	// bound to that owner (a channel's availability limited to its skus).
	OwnerOnly bool
	// Key, when set, coalesces: a newer event with the same key replaces
	// an undelivered older one.
	Key  string
	Body []byte // JSON
}

// Stats are an endpoint's delivery counters.
type Stats struct {
	Pending             int    `json:"pending" cbor:"-"`
	Delivered           uint64 `json:"delivered" cbor:"1,keyasint"`
	Failures            uint64 `json:"failures" cbor:"2,keyasint"`
	ConsecutiveFailures uint64 `json:"consecutive_failures" cbor:"3,keyasint"`
	Superseded          uint64 `json:"superseded" cbor:"4,keyasint"`
	Dead                uint64 `json:"dead" cbor:"5,keyasint"`
	LastError           string `json:"last_error,omitempty" cbor:"6,keyasint,omitempty"`
	LastStatus          int    `json:"last_status,omitempty" cbor:"7,keyasint,omitempty"`
	LastAttemptMS       int64  `json:"last_attempt_ms,omitempty" cbor:"8,keyasint,omitempty"`
	LastSuccessMS       int64  `json:"last_success_ms,omitempty" cbor:"9,keyasint,omitempty"`
	NextAttemptMS       int64  `json:"next_attempt_ms,omitempty" cbor:"-"`
}

// View is an endpoint with its stats and a masked secret.
type View struct {
	Endpoint
	Stats Stats `json:"stats"`
}

// Delivery is one queued event for one endpoint.
type Delivery struct {
	Seq        uint64 `json:"seq" cbor:"1,keyasint"`
	Event      string `json:"event" cbor:"2,keyasint"`
	Key        string `json:"key,omitempty" cbor:"3,keyasint,omitempty"`
	Body       []byte `json:"-" cbor:"4,keyasint"`
	Attempts   int    `json:"attempts" cbor:"5,keyasint"`
	CreatedMS  int64  `json:"created_ms" cbor:"6,keyasint"`
	NextMS     int64  `json:"next_attempt_ms" cbor:"7,keyasint"`
	LastError  string `json:"last_error,omitempty" cbor:"8,keyasint,omitempty"`
	LastStatus int    `json:"last_status,omitempty" cbor:"9,keyasint,omitempty"`
	// Dead is set when the delivery was given up (older than MaxAge).
	Dead bool `json:"dead,omitempty" cbor:"10,keyasint,omitempty"`
}

// Failure is one failed attempt.
type Failure struct {
	Delivery uint64 `json:"delivery" cbor:"1,keyasint"`
	Event    string `json:"event" cbor:"2,keyasint"`
	Attempt  int    `json:"attempt" cbor:"3,keyasint"`
	AtMS     int64  `json:"at_ms" cbor:"4,keyasint"`
	Status   int    `json:"status,omitempty" cbor:"5,keyasint,omitempty"`
	Error    string `json:"error" cbor:"6,keyasint"`
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func mask(secret string) string {
	if len(secret) <= 4 {
		return "****"
	}
	return secret[:4] + "…"
}
