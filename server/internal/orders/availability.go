package orders

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// ATS is the available-to-sell of one sku in one warehouse.
type ATS struct {
	Warehouse string `json:"warehouse"`
	SKU       string `json:"sku"`
	// OnHand is the stock in every location, as recorded.
	OnHand int64 `json:"on_hand"`
	// Sellable is the part of OnHand in sellable locations.
	Sellable int64 `json:"sellable"`
	Reserved int64 `json:"reserved"`
	Safety   int64 `json:"safety_stock"`
	// Available = Sellable − Reserved − Safety; negative when oversold.
	Available int64 `json:"available"`
}

// Total is the availability of one sku over every warehouse.
type Total struct {
	SKU      string `json:"sku"`
	OnHand   int64  `json:"on_hand"`
	Sellable int64  `json:"sellable"`
	Reserved int64  `json:"reserved"`
	Safety   int64  `json:"safety_stock"`
	// Available is the pool channels share: Σ max(0, ATS) over warehouses.
	Available int64 `json:"available"`
}

// Channel is a sales channel and its allocation of the pool.
type Channel struct {
	Name string `json:"channel" cbor:"1,keyasint"`
	// SharePct is the percentage of the pool offered (0..100, default 100).
	SharePct float64 `json:"share_pct" cbor:"2,keyasint"`
	// Cap, when set, bounds what is offered per sku.
	Cap *int64 `json:"cap,omitempty" cbor:"3,keyasint,omitempty"`
	// Warehouses the channel sells from; empty means all.
	Warehouses []string `json:"warehouses,omitempty" cbor:"4,keyasint,omitempty"`
	UpdatedMS  int64    `json:"updated_ms" cbor:"5,keyasint"`
	// Policy is what happens to an order placed without a hold that
	// cannot ship in full: PolicyRefuse (the default) or PolicyBackorder.
	Policy string `json:"policy" cbor:"6,keyasint,omitempty"`
	// MinShelfDays, when set, is the channel's own minimum remaining
	// shelf life in days, stricter than the items': the channel is
	// offered and admitted only units of lots with at least that much
	// left, and its orders are routed to such lots.
	MinShelfDays int `json:"min_shelf_days,omitempty" cbor:"7,keyasint,omitempty"`
}

// MaxMinShelfDays bounds Channel.MinShelfDays (ten years).
const MaxMinShelfDays = 3660

// Order policies of a channel (Channel.Policy).
const (
	// PolicyRefuse: the order is refused (nothing reserved) with what is
	// available. The default: the channel learns it before it takes the
	// buyer's money, and no promise is made that stock cannot keep.
	PolicyRefuse = "refuse"
	// PolicyBackorder: the order is taken as backordered, reserves nothing,
	// and is released to picking first come, first served when stock
	// arrives.
	PolicyBackorder = "backorder"
)

// policy returns the channel's policy, the default when unset.
func (c *Channel) policy() string {
	if c.Policy == "" {
		return PolicyRefuse
	}
	return c.Policy
}

// Validate checks an allocation.
func (c *Channel) Validate() error {
	var errs []string
	if err := protocol.ValidateID(c.Name); err != nil {
		errs = append(errs, "channel: "+err.Error())
	}
	if math.IsNaN(c.SharePct) || c.SharePct < 0 || c.SharePct > 100 {
		errs = append(errs, fmt.Sprintf("share_pct: %v must be 0..100", c.SharePct))
	}
	if c.Cap != nil && *c.Cap < 0 {
		errs = append(errs, fmt.Sprintf("cap: %d must be ≥ 0", *c.Cap))
	}
	switch c.Policy {
	case "":
		c.Policy = PolicyRefuse
	case PolicyRefuse, PolicyBackorder:
	default:
		errs = append(errs, fmt.Sprintf("policy: %q must be %q or %q", c.Policy, PolicyRefuse, PolicyBackorder))
	}
	if c.MinShelfDays < 0 || c.MinShelfDays > MaxMinShelfDays {
		errs = append(errs, fmt.Sprintf("min_shelf_days: %d must be 0..%d", c.MinShelfDays, MaxMinShelfDays))
	}
	for i, w := range c.Warehouses {
		if err := protocol.ValidateID(w); err != nil {
			errs = append(errs, fmt.Sprintf("warehouses[%d]: %v", i, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// Allocate returns what the channel is offered of a sku, from the ATS of
// each warehouse and what the channel's own open orders and holds of the
// sku reserve (own): its share of the pool, and never more than its cap
// less what it already reserves. The pool sums the ATS of the channel's
// warehouses as they are: a warehouse below zero (reservations beyond its
// stock, which the others must ship) takes from the others' surplus
// rather than being hidden by it.
func (c *Channel) Allocate(perWH map[string]int64, own int64) int64 {
	var pool int64
	for wh, a := range perWH {
		if c.sells(wh) {
			pool += a
		}
	}
	q := int64(math.Floor(float64(max(pool, 0)) * c.SharePct / 100))
	if c.Cap != nil && q > *c.Cap-own {
		q = max(*c.Cap-own, 0)
	}
	return q
}

func (c *Channel) sells(wh string) bool {
	if len(c.Warehouses) == 0 {
		return true
	}
	for _, w := range c.Warehouses {
		if w == wh {
			return true
		}
	}
	return false
}

// Item is one sku of a channel's availability.
type Item struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
}

// Snapshot is a channel's whole availability: the payload of the retained
// {root}/channels/{channel}/availability message and of the
// "availability" webhook.
type Snapshot struct {
	Channel     string  `json:"channel"`
	Seq         uint64  `json:"seq"`
	GeneratedAt string  `json:"generated_at"`
	Allocation  Channel `json:"allocation"`
	// Owner, when set, limits Items to that owner's skus (ForOwner).
	Owner string `json:"owner,omitempty"`
	Items []Item `json:"items"`
}

// Availability returns the ATS rows matching wh and sku (empty: all), by
// warehouse and sku, and the totals per sku, with the reservation sequence
// they reflect.
func (s *Service) Availability(wh, sku string) ([]ATS, []Total, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows []ATS
	totals := map[string]*Total{}
	for ws, a := range s.ats {
		if sku != "" && ws.sku != sku {
			continue
		}
		t := totals[ws.sku]
		if t == nil {
			t = &Total{SKU: ws.sku}
			totals[ws.sku] = t
		}
		t.OnHand += a.OnHand
		t.Sellable += a.Sellable
		t.Reserved += a.Reserved
		t.Safety += a.Safety
		t.Available += max(a.Available, 0)
		if wh == "" || ws.wh == wh {
			rows = append(rows, a)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Warehouse != rows[j].Warehouse {
			return rows[i].Warehouse < rows[j].Warehouse
		}
		return rows[i].SKU < rows[j].SKU
	})
	out := make([]Total, 0, len(totals))
	for _, t := range totals {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return rows, out, s.seq
}

// Channels returns every channel with its allocation, by name.
func (s *Service) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Channel, 0, len(s.channels))
	for _, c := range s.channels {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PutChannel creates or changes a channel's allocation; its availability
// is republished (by the active replica: tell the others, ChannelsChanged).
func (s *Service) PutChannel(_ context.Context, c Channel) (Channel, error) {
	if err := c.Validate(); err != nil {
		return Channel{}, err
	}
	c.UpdatedMS = s.cfg.Now().UnixMilli()
	s.ordMu.Lock()
	defer s.ordMu.Unlock()
	if err := s.st.Update(func(tx store.Tx) error { return putCBOR(tx, channelKey(c.Name), c) }); err != nil {
		return Channel{}, err
	}
	s.mu.Lock()
	s.channels[c.Name] = c
	s.publish = true
	s.mu.Unlock()
	s.signal()
	return c, nil
}

// Snapshot returns a channel's current availability.
func (s *Service) Snapshot(channel string) (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[channel]
	if !ok {
		return Snapshot{}, false
	}
	return s.snapshot(c, s.bySKUWarehouse(), s.channelReserved()), true
}

// bySKUWarehouse returns sku → warehouse → ATS; s.mu is held.
func (s *Service) bySKUWarehouse() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for ws, a := range s.ats {
		m := out[ws.sku]
		if m == nil {
			m = map[string]int64{}
			out[ws.sku] = m
		}
		m[ws.wh] = a.Available
	}
	return out
}

type chsku struct{ channel, sku string }

// channelReserved returns what each channel's live orders and holds
// reserve per sku, over every warehouse; s.mu is held.
func (s *Service) channelReserved() map[chsku]int64 {
	out := map[chsku]int64{}
	for _, o := range s.open {
		for _, l := range o.Lines {
			if l.Reserved > 0 {
				out[chsku{o.Channel, l.SKU}] += l.Reserved
			}
		}
	}
	return out
}

// snapshot builds a channel's availability; s.mu is held.
func (s *Service) snapshot(c Channel, per map[string]map[string]int64, own map[chsku]int64) Snapshot {
	snap := Snapshot{Channel: c.Name, Seq: s.seq, GeneratedAt: s.cfg.Now().UTC().Format(time.RFC3339Nano), Allocation: c, Items: make([]Item, 0, len(per))}
	for sku, m := range per {
		snap.Items = append(snap.Items, Item{SKU: sku, Available: c.Allocate(s.freshEnough(&c, sku, m), own[chsku{c.Name, sku}])})
	}
	sort.Slice(snap.Items, func(i, j int) bool { return snap.Items[i].SKU < snap.Items[j].SKU })
	return snap
}

// freshEnough returns the ATS per warehouse of a sku that channel c may
// be given: less, for a channel with MinShelfDays, the units of lots with
// less shelf life left (Config.ShortDated) — all of them, as if no order
// of another channel took its units from those lots, so the channel is
// never offered what only short-dated lots could give. per is not
// changed; s.mu is held.
func (s *Service) freshEnough(c *Channel, sku string, per map[string]int64) map[string]int64 {
	if c.MinShelfDays <= 0 || s.cfg.ShortDated == nil {
		return per
	}
	out := make(map[string]int64, len(per))
	for wh, a := range per {
		out[wh] = a - s.cfg.ShortDated(wh, sku, c.MinShelfDays)
	}
	return out
}

func fingerprint(sn *Snapshot) string {
	var b strings.Builder
	a := sn.Allocation
	cp := "-"
	if a.Cap != nil {
		cp = strconv.FormatInt(*a.Cap, 10)
	}
	fmt.Fprintf(&b, "%d|%v|%s|%v|%s|%d", sn.Seq, a.SharePct, cp, a.Warehouses, a.Policy, a.MinShelfDays)
	for _, it := range sn.Items {
		fmt.Fprintf(&b, "|%s=%d", it.SKU, it.Available)
	}
	return b.String()
}

// flushPublish hands every channel whose availability changed to Publish.
func (s *Service) flushPublish() {
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	s.mu.Lock()
	if !s.publish {
		s.mu.Unlock()
		return
	}
	s.publish = false
	if !s.active || len(s.channels) == 0 { // the active replica publishes, each channel's
		s.mu.Unlock()
		return
	}
	per, own := s.bySKUWarehouse(), s.channelReserved()
	var out []Snapshot
	names := make([]string, 0, len(s.channels))
	for n := range s.channels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sn := s.snapshot(s.channels[n], per, own)
		fp := fingerprint(&sn)
		if s.last[n] == fp {
			continue
		}
		s.last[n] = fp
		out = append(out, sn)
	}
	s.mu.Unlock()
	if s.cfg.Publish == nil {
		return
	}
	for _, sn := range out {
		s.cfg.Publish(sn)
	}
}
