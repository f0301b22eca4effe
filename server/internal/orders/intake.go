package orders

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Intake: orders, checkout holds and backorder releases are admitted and
// committed in groups. A request joins the queue; the first to find no
// commit in flight commits everything queued, in one durable transaction,
// judging each request in queue order against the model and what the
// requests before it in the group took. While that transaction commits,
// new requests queue for the next group. So one fsync serves many
// requests, and no request waits on a lock held across another's commit
// except the group's own.

// maxGroup bounds the requests of one group (one transaction).
const maxGroup = 256

type intakeKind int

const (
	kindOrder      intakeKind = iota // an order (NewOrder), perhaps converting a hold
	kindHold                         // a checkout hold (NewOrder shaped)
	kindRelease                      // a backordered order (or line) released to picking
	kindReallocate                   // a line's units moved to another warehouse or backordered (Reallocate)
)

// request is one intake request and, once done is closed, its answer.
type request struct {
	kind intakeKind
	n    NewOrder
	ttl  int64 // holds: milliseconds
	// owner is the owner of the lines' items (Service.ownerOf).
	owner string

	line  uint32 // kindReallocate: the line, and at most how many units
	units int64
	asked int64 // kindReallocate: units as asked (units is what was handled)
	// backordered: kindReallocate, the units backordered on the line
	backordered int64

	o          Order    // the order or hold as written, picks applied
	parts      []Order  // parts of the order written in other warehouses (allocate.go)
	partEvents []string // their changes: created, reallocated (default created)
	event      string   // its change: created (an order, open or backordered), held, released
	created    bool
	existing   *okey  // idempotency key found: the order it names
	converted  *Order // the hold an order converted, as written
	rechecked  []conflicts.Conflict
	err        error
	done       chan struct{}
}

func (r *request) reset() {
	r.o, r.event, r.created, r.existing, r.converted, r.rechecked, r.err = Order{}, "", false, nil, nil, nil, nil
	r.parts, r.partEvents, r.backordered = nil, nil, 0
	if r.kind == kindReallocate {
		r.units = r.asked
	}
}

// Refusal is the error of an order or hold refused because some of its
// skus cannot ship: for each, what was asked and what the channel is
// offered (what it can still sell) in the warehouse. It wraps
// ErrUnavailable.
type Refusal struct {
	Warehouse string      `json:"warehouse"`
	Channel   string      `json:"channel"`
	Skus      []Shortfall `json:"available"`
}

// Shortfall is one sku a refused request asked more of than is available.
type Shortfall struct {
	SKU       string `json:"sku"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
}

// shortfall is a Shortfall with what the warehouse can ship (here) and
// what the channel is offered of the sku over all its warehouses (offer),
// for allocation (allocate.go).
type shortfall struct {
	Shortfall
	here, offer int64
}

func public(short []shortfall) []Shortfall {
	out := make([]Shortfall, len(short))
	for i, sf := range short {
		out[i] = sf.Shortfall
	}
	return out
}

func (r *Refusal) Error() string {
	parts := make([]string, len(r.Skus))
	for i, s := range r.Skus {
		parts[i] = fmt.Sprintf("%s: %d asked, %d available", s.SKU, s.Requested, s.Available)
	}
	return fmt.Sprintf("%v to channel %s in warehouse %s (%s); ask for what is available, or hold it first", ErrUnavailable, r.Channel, r.Warehouse, strings.Join(parts, "; "))
}

func (r *Refusal) Unwrap() error { return ErrUnavailable }

// submit queues rs (together, in order) and returns once each is
// answered: the caller commits the queue itself when no commit is in
// flight, and hands what queued behind its own to a goroutine of its own.
func (s *Service) submit(ctx context.Context, rs ...*request) {
	for _, r := range rs {
		r.done = make(chan struct{})
	}
	s.qmu.Lock()
	s.queue = append(s.queue, rs...)
	lead := !s.committing
	s.committing = true
	s.qmu.Unlock()
	if lead {
		s.drain(context.WithoutCancel(ctx), rs[len(rs)-1].done)
	}
	for _, r := range rs {
		<-r.done
	}
}

// drain commits queued groups until own is answered, then leaves the rest
// to a goroutine that drains until the queue is empty.
func (s *Service) drain(ctx context.Context, own chan struct{}) {
	for {
		s.qmu.Lock()
		batch := s.queue
		if len(batch) > maxGroup {
			batch, s.queue = batch[:maxGroup:maxGroup], batch[maxGroup:]
		} else {
			s.queue = nil
		}
		if len(batch) == 0 {
			s.committing = false
			s.qmu.Unlock()
			return
		}
		s.qmu.Unlock()
		s.commitGroup(ctx, batch)
		if own != nil {
			select {
			case <-own:
				go s.drain(ctx, nil)
				return
			default:
			}
		}
	}
}

// group is what one group's requests took or released so far, beside the
// model (s.mu is not held between requests).
type group struct {
	delta  map[whsku]int64 // reserved (+) or released (−) by the group
	own    map[chsku]int64 // the same per channel
	caught map[whsku]int64 // reserved by orders other replicas wrote that the model has not read
	chans  map[string]Channel
}

func (s *Service) newGroup(caught []Order) *group {
	g := &group{delta: map[whsku]int64{}, own: map[chsku]int64{}, caught: map[whsku]int64{}, chans: map[string]Channel{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range caught { // counted whole, as if nothing of them were picked: never less than the truth
		rec := &caught[i]
		if held := s.open[okey{rec.Warehouse, rec.ID}]; held != nil && held.Seq == rec.Seq {
			continue
		}
		if reserving(rec.Status) {
			for _, l := range rec.Lines {
				g.caught[whsku{rec.Warehouse, l.SKU}] += l.Qty
			}
		}
	}
	return g
}

// channel returns a channel's allocation as stored, creating the default
// one (all warehouses, 100 %, refuse) when the channel is new.
func (g *group) channel(tx store.Tx, name string, now int64) (Channel, error) {
	if c, ok := g.chans[name]; ok {
		return c, nil
	}
	var c Channel
	found, err := getCBOR(tx, channelKey(name), &c)
	if err != nil {
		return c, err
	}
	if !found {
		c = Channel{Name: name, SharePct: 100, Policy: PolicyRefuse, UpdatedMS: now}
		if err := putCBOR(tx, channelKey(name), c); err != nil {
			return c, err
		}
	}
	g.chans[name] = c
	return c, nil
}

// available returns what can still be promised of a sku in a warehouse:
// its ATS less what the group took and what unread orders reserve.
func (s *Service) available(g *group, ws whsku) int64 {
	return s.ats[ws].Available - g.delta[ws] - g.caught[ws]
}

// shortOf returns the skus of need that the channel cannot be given in
// warehouse wh: more than the warehouse can ship once every reservation is
// met, or more than the channel is offered (its share, its cap).
func (s *Service) shortOf(g *group, c *Channel, wh string, need map[string]int64) []shortfall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []shortfall
	for sku, n := range need {
		if n <= 0 {
			continue
		}
		here := s.available(g, whsku{wh, sku})
		per := make(map[string]int64, len(s.whs))
		for w := range s.whs {
			per[w] = s.available(g, whsku{w, sku})
		}
		per[wh] = here
		per = s.freshEnough(c, sku, per)
		here = per[wh]
		own := g.own[chsku{c.Name, sku}]
		for w := range s.whs {
			for k := range s.bySKU[whsku{w, sku}] {
				if o := s.open[k]; o.Channel == c.Name {
					for _, l := range o.Lines {
						if l.SKU == sku {
							own += l.Reserved
						}
					}
				}
			}
		}
		offer := c.Allocate(per, own)
		if !c.sells(wh) {
			offer = 0
		}
		if a := min(max(here, 0), offer); n > a {
			out = append(out, shortfall{Shortfall{SKU: sku, Requested: n, Available: a}, max(here, 0), offer})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return out
}

// fits reports whether warehouse wh can ship need once every reservation
// is met (a backorder's release: the channel took the order already),
// from lots with the channel's own minimum shelf life left.
func (s *Service) fits(g *group, channel, wh string, need map[string]int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channel]
	for sku, n := range need {
		if n > s.freshEnough(&c, sku, map[string]int64{wh: s.available(g, whsku{wh, sku})})[wh] {
			return false
		}
	}
	return true
}

func needOf(o *Order) map[string]int64 {
	need := map[string]int64{}
	for _, l := range o.Lines {
		need[l.SKU] += l.Here() - l.Picked
	}
	return need
}

func (g *group) take(o *Order, sign int64) {
	for _, l := range o.Lines {
		g.delta[whsku{o.Warehouse, l.SKU}] += sign * l.Reserved
		g.own[chsku{o.Channel, l.SKU}] += sign * l.Reserved
	}
}

// commitGroup admits and writes a group of requests in one transaction and
// puts what it wrote in the model.
func (s *Service) commitGroup(ctx context.Context, batch []*request) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.cfg.Now().UnixMilli()
	set := map[whsku]struct{}{}
	var everywhere []string // skus other warehouses may take (allocate.go)
	for _, r := range batch {
		for _, l := range r.n.Lines {
			set[whsku{r.n.Warehouse, l.SKU}] = struct{}{}
			if r.kind == kindReallocate {
				everywhere = append(everywhere, l.SKU)
			}
		}
	}
	if len(everywhere) > 0 {
		s.mu.Lock()
		for w := range s.whs {
			for _, sku := range everywhere {
				set[whsku{w, sku}] = struct{}{}
			}
		}
		s.mu.Unlock()
	}
	// Admission judges from the model: bring the stock and reservations
	// of the group's skus up to date first.
	refreshed, rerr := s.refresh(ctx, set, false)
	if rerr != nil {
		s.log.Warn("stock of new orders' skus not read again; they are judged from the model as it is", "err", rerr)
	}
	var (
		caught     []Order
		seq, first uint64 // the sequence after the group, and before it
	)
	s.ordMu.Lock()
	s.mu.Lock()
	cursor := s.cursor
	s.mu.Unlock()
	err := s.st.Update(func(tx store.Tx) error {
		for _, r := range batch {
			r.reset()
		}
		last, err := getU64(tx, []byte(keySeq))
		if err != nil {
			return err
		}
		if caught, err = readLog(tx, cursor); err != nil {
			return err
		}
		g := s.newGroup(caught)
		seq, first = last, last
		for _, r := range batch {
			if err := s.admit(tx, g, r, now, &seq); err != nil {
				return err
			}
		}
		if seq != last {
			return tx.Set([]byte(keySeq), u64(seq))
		}
		return nil
	})
	if err != nil {
		s.ordMu.Unlock()
		for _, r := range batch {
			r.reset()
			r.err = fmt.Errorf("store order: %w", err)
		}
		return
	}
	s.mu.Lock()
	s.markDirty(s.applyRecords(caught))
	for _, r := range batch {
		if r.converted != nil {
			if prev := s.open[okey{r.converted.Warehouse, r.converted.ID}]; prev != nil {
				s.removeOpen(prev)
			}
			for _, l := range r.converted.Lines {
				set[whsku{r.converted.Warehouse, l.SKU}] = struct{}{}
			}
		}
		if !r.created {
			continue
		}
		for i := range r.parts {
			p := &r.parts[i]
			if prev := s.open[okey{p.Warehouse, p.ID}]; prev != nil {
				s.removeOpen(prev)
			}
			held := cloneOrder(p)
			s.addOpen(&held)
			for _, l := range p.Lines {
				set[whsku{p.Warehouse, l.SKU}] = struct{}{}
			}
		}
		for _, l := range r.o.Lines {
			set[whsku{r.o.Warehouse, l.SKU}] = struct{}{}
		}
		if _, ok := s.channels[r.o.Channel]; !ok {
			s.channels[r.o.Channel] = Channel{Name: r.o.Channel, SharePct: 100, Policy: PolicyRefuse, UpdatedMS: now}
		}
		k := okey{r.o.Warehouse, r.o.ID}
		if prev := s.open[k]; prev != nil {
			s.removeOpen(prev)
		}
		if live(r.o.Status) {
			held := cloneOrder(&r.o)
			s.addOpen(&held)
		}
	}
	md := s.masterView()
	for ws := range set {
		s.recomputeSKU(ws, md)
	}
	s.markDirty(set) // their picks and oversell, at the next flush
	s.seq, s.cursor = max(s.seq, seq), max(s.cursor, seq)
	s.publish = true
	s.mu.Unlock()
	s.ordMu.Unlock()
	if seq != first || len(caught) > 0 || len(refreshed) > 0 {
		s.signal() // a group that changed nothing (refusals, releases that still wait) wakes no recompute
	}
	for _, r := range batch {
		if s.cfg.OnConflict != nil {
			for _, c := range r.rechecked { // picks that came before the order, beyond its lines
				s.cfg.OnConflict(c)
			}
		}
		if s.cfg.OnOrder == nil {
			continue
		}
		if r.converted != nil {
			s.cfg.OnOrder(cloneOrder(r.converted), string(StatusConverted))
		}
		if r.created {
			s.cfg.OnOrder(cloneOrder(&r.o), r.event)
		}
		for i := range r.parts {
			ev := "created"
			if i < len(r.partEvents) {
				ev = r.partEvents[i]
			}
			s.cfg.OnOrder(cloneOrder(&r.parts[i]), ev)
		}
	}
}

// admit judges one request in the group's transaction and writes what it
// takes. A request refused or in conflict gets r.err; the error returned
// is the store's (the group's transaction fails).
func (s *Service) admit(tx store.Tx, g *group, r *request, now int64, seq *uint64) error {
	switch r.kind {
	case kindRelease:
		return s.admitRelease(tx, g, r, now, seq)
	case kindReallocate:
		return s.admitReallocate(tx, g, r, now, seq)
	}
	n := &r.n
	ik := idemKey(n.Channel, n.ExternalID)
	if r.kind == kindHold {
		ik = holdIdemKey(n.Channel, n.ExternalID)
	}
	ref, found, err := tx.Get(ik)
	if err != nil {
		return err
	}
	if found {
		wh, id, _ := split2(ref)
		r.existing = &okey{wh, id}
		return nil
	}
	var other Order
	if found, err := getCBOR(tx, orderKey(n.Warehouse, n.ID), &other); err != nil {
		return err
	} else if found {
		r.err = fmt.Errorf("%w: id %q of warehouse %s belongs to channel %s, external id %s (%s); give another id", ErrConflict, n.ID, n.Warehouse, other.Channel, other.ExternalID, other.Status)
		return nil
	}
	c, err := g.channel(tx, n.Channel, now)
	if err != nil {
		return err
	}
	o := Order{Warehouse: n.Warehouse, ID: n.ID, Channel: n.Channel, ExternalID: n.ExternalID, Lines: n.Lines, Status: StatusOpen, CreatedMS: now, UpdatedMS: now, Owner: r.owner}
	r.event = "created"
	if r.kind == kindHold {
		o.Status, o.ExpiresMS, r.event = StatusHeld, now+r.ttl, string(StatusHeld)
	}
	var hold *Order
	var splitTo []part // what other warehouses ship of the order
	if n.Hold != "" {
		if hold, err = s.holdToConvert(tx, n, now); err != nil {
			var he *holdError
			if errors.As(err, &he) {
				r.err = he.err
				return nil
			}
			return err
		}
	}
	if hold == nil {
		ps, err := tx.OrderPicks(o.Warehouse, o.ID) // picks may come before their order
		if err != nil {
			return err
		}
		applyPicks(&o, ps, func(string) bool { return true })
		short := s.shortOf(g, &c, o.Warehouse, needOf(&o))
		if len(short) > 0 && r.kind == kindOrder {
			split := cloneOrder(&o)
			parts, ok, err := s.planSplit(g, &c, &split, short, func(wh string) (bool, error) {
				var other Order
				return getCBOR(tx, orderKey(wh, o.ID), &other) // a new order: any order of its id there is another's
			})
			if err != nil {
				return err
			}
			if ok {
				o, short = split, nil
				for _, p := range parts {
					o.Parts = append(o.Parts, p.wh)
				}
				sort.Strings(o.Parts)
				applyPicks(&o, ps, func(string) bool { return true })
				splitTo = parts
			}
		}
		if len(short) > 0 {
			if r.kind == kindHold || c.policy() == PolicyRefuse {
				r.err = &Refusal{Warehouse: o.Warehouse, Channel: o.Channel, Skus: public(short)}
				return nil
			}
			o.Status = StatusBackordered                          // event "created": the order is taken, its status says how
			applyPicks(&o, ps, func(string) bool { return true }) // reserves nothing now
		}
	}
	if hold != nil {
		held := *hold
		for i := range held.Lines {
			held.Lines[i].Reserved = held.Lines[i].Qty
		}
		g.take(&held, -1)
		prev := hold.Seq
		*seq++
		hold.Status, hold.Hold, hold.UpdatedMS, hold.Seq = StatusConverted, o.ID, now, *seq
		if err := s.writeRecord(tx, hold, prev); err != nil {
			return err
		}
		o.Hold = hold.ID
		ps, err := tx.OrderPicks(o.Warehouse, o.ID)
		if err != nil {
			return err
		}
		applyPicks(&o, ps, func(string) bool { return true })
		r.converted = hold
	}
	*seq++
	o.Seq = *seq
	if err := s.writeRecord(tx, &o, 0); err != nil {
		return err
	}
	if err := tx.Set(ik, orderRef(o.Warehouse, o.ID)); err != nil {
		return err
	}
	if r.kind == kindOrder {
		if r.rechecked, err = tx.PutOrder(forDetector(&o)); err != nil {
			return err
		}
		if s.cfg.OnOrderTx != nil {
			if err := s.cfg.OnOrderTx(tx, cloneOrder(&o), r.event); err != nil {
				return err
			}
		}
	}
	g.take(&o, 1)
	r.o, r.created = o, true
	for _, p := range splitTo {
		po, err := s.writePart(tx, g, &o, p, now, seq)
		if err != nil {
			return err
		}
		r.parts = append(r.parts, po)
	}
	return nil
}

// holdToConvert reads the hold an order names and checks that the order
// may convert it: held, not expired, of the order's channel and warehouse,
// and holding at least what the order asks of each sku. A hold that does
// not qualify is a *holdError, in the order's terms.
func (s *Service) holdToConvert(tx store.Tx, n *NewOrder, now int64) (*Order, error) {
	var h Order
	found, err := getCBOR(tx, orderKey(n.Warehouse, n.Hold), &h)
	if err != nil {
		return nil, err
	}
	fail := func(format string, a ...any) (*Order, error) {
		return nil, &holdError{fmt.Errorf("%w: hold %s/%s: "+format, append([]any{ErrConflict, n.Warehouse, n.Hold}, a...)...)}
	}
	switch {
	case !found:
		return fail("no such hold (holds are made with POST /api/v1/holds)")
	case h.Status == StatusHeld && h.ExpiresMS <= now, h.Status == StatusExpired:
		return fail("expired; its units went back to the pool: place the order without the hold, or hold again")
	case h.Status != StatusHeld:
		return fail("is %s, not held", h.Status)
	case h.Channel != n.Channel:
		return fail("belongs to channel %s", h.Channel)
	}
	have := map[string]int64{}
	for _, l := range h.Lines {
		have[l.SKU] += l.Qty
	}
	want := map[string]int64{}
	for _, l := range n.Lines {
		want[l.SKU] += l.Qty
	}
	for sku, q := range want {
		if q > have[sku] {
			return fail("holds %d of %s, the order asks %d: hold more first", have[sku], sku, q)
		}
	}
	return &h, nil
}

// holdError carries a hold's refusal out of holdToConvert; admit turns it
// into the request's error.
type holdError struct{ err error }

func (e *holdError) Error() string { return e.err.Error() }
func (e *holdError) Unwrap() error { return e.err }

// writeRecord writes an order or hold record, its open marker while it is
// live, and its log entry (prev: the sequence of its previous write).
func (s *Service) writeRecord(tx store.Tx, o *Order, prev uint64) error {
	if err := putCBOR(tx, orderKey(o.Warehouse, o.ID), stored(o)); err != nil {
		return err
	}
	if live(o.Status) {
		if err := tx.Set(openKey(o.Warehouse, o.ID), []byte{}); err != nil {
			return err
		}
	} else if err := tx.Delete(openKey(o.Warehouse, o.ID)); err != nil {
		return err
	}
	return logOrder(tx, o.Warehouse, o.ID, o.Seq, prev)
}

// admitRelease releases a backordered order to picking when its warehouse
// can ship it once every reservation is met; of an open order, it
// releases the units its lines backordered after a short pick.
func (s *Service) admitRelease(tx store.Tx, g *group, r *request, now int64, seq *uint64) error {
	var o Order
	found, err := getCBOR(tx, orderKey(r.n.Warehouse, r.n.ID), &o)
	if err != nil || !found {
		return err
	}
	ps, err := tx.OrderPicks(o.Warehouse, o.ID)
	if err != nil {
		return err
	}
	applyPicks(&o, ps, func(string) bool { return true })
	var need map[string]int64
	switch o.Status {
	case StatusBackordered:
		need = needOf(&o)
	case StatusOpen:
		need = backorderedOf(&o)
		if len(need) == 0 {
			return nil
		}
	default:
		return nil
	}
	var split []part
	if !s.fits(g, o.Channel, o.Warehouse, need) {
		if o.Status != StatusBackordered {
			return nil
		}
		// The owner's other warehouses may ship what this one cannot.
		if split, err = s.releaseSplit(tx, g, &o, need, now); err != nil || split == nil {
			return err
		}
	}
	before := cloneOrder(&o)
	prev := o.Seq
	*seq++
	o.Status, o.UpdatedMS, o.Seq = StatusOpen, now, *seq
	for i := range o.Lines {
		o.Lines[i].Backordered = 0
	}
	applyPicks(&o, ps, func(string) bool { return true })
	if err := s.writeRecord(tx, &o, prev); err != nil {
		return err
	}
	if before.Status == StatusOpen {
		if _, err := tx.PutOrder(forDetector(&o)); err != nil {
			return err
		}
	}
	if s.cfg.OnOrderTx != nil {
		if err := s.cfg.OnOrderTx(tx, cloneOrder(&o), "released"); err != nil {
			return err
		}
	}
	g.take(&before, -1)
	g.take(&o, 1)
	r.o, r.created, r.event = o, true, "released"
	for _, p := range split {
		po, err := s.writePart(tx, g, &o, p, now, seq)
		if err != nil {
			return err
		}
		r.parts = append(r.parts, po)
	}
	return nil
}

// backorderedOf returns what an open order's lines wait for, per sku.
func backorderedOf(o *Order) map[string]int64 {
	var need map[string]int64
	for _, l := range o.Lines {
		if l.Backordered > 0 {
			if need == nil {
				need = map[string]int64{}
			}
			need[l.SKU] += l.Backordered
		}
	}
	return need
}
