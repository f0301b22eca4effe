package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/shelfsync/shelfsync/drivers/feedback"
	"github.com/shelfsync/shelfsync/firmware-sim/barcodesim"
)

// outcome is what the operator heard after a scan.
type outcome uint8

const (
	notSent outcome = iota // the scanner could not send (unplugged: the gateway is down)
	good
	bad
	unheard // sent, but no beep: the gateway died or did not answer in time
)

func (o outcome) String() string {
	return [...]string{"not-sent", "good", "bad", "unheard"}[o]
}

// prestock is the set-up quantity of the keys picks and moves draw from.
const prestock = 1_000_000

// stats are the harness's own counters.
type stats struct {
	scans, timeouts, stale, unheard atomic.Int64
}

// operator is a person with a scanner on one gateway device. It scans,
// waits for the beep, and logs every op a good beep confirmed.
type operator struct {
	a       *agent
	dev     string
	sim     *barcodesim.Sim
	rnd     *rand.Rand
	tr      *tracker
	st      *stats
	timeout time.Duration
	countN  int64
	// lastSeq is the highest seq the agent gave an op of this device that
	// the operator heard confirmed: the next confirmed ops lie above it.
	lastSeq uint64
}

// scan sends text and waits for the beep.
func (o *operator) scan(ctx context.Context, text string) outcome {
	if err := o.a.gate.wait(ctx); err != nil {
		return notSent
	}
	_, down := o.a.gate.chans()
	fb := o.sim.Feedback()
	for drained := false; !drained; {
		select {
		case <-fb:
			o.st.stale.Add(1) // a beep nobody waited for: never attributed
		default:
			drained = true
		}
	}
	o.st.scans.Add(1)
	if err := o.sim.Scan(text); err != nil {
		return notSent
	}
	t := time.NewTimer(o.timeout)
	defer t.Stop()
	select {
	case sig := <-fb:
		if sig == feedback.Bad {
			return bad
		}
		return good // good or warn: accepted and committed
	case <-down:
		o.st.unheard.Add(1)
		return unheard
	case <-t.C:
		o.st.timeouts.Add(1)
		o.st.unheard.Add(1)
		_ = o.a.resync(ctx, o.dev)
		return unheard
	case <-ctx.Done():
		o.st.unheard.Add(1)
		return unheard
	}
}

// expect scans each text and reports whether every one was accepted.
func (o *operator) expect(ctx context.Context, texts ...string) bool {
	for _, t := range texts {
		if o.scan(ctx, t) != good {
			return false
		}
	}
	return true
}

// recover closes whatever session may be open: CMD:CANCEL until a beep
// says so (good: one was open, bad: none was).
func (o *operator) recover(ctx context.Context) {
	for i := 0; i < 50 && ctx.Err() == nil; i++ {
		switch o.scan(ctx, "CMD:CANCEL") {
		case good, bad:
			return
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// commit sends the scan that commits ops and records them by outcome. It
// reports whether the operator heard a good beep.
func (o *operator) commit(ctx context.Context, text string, ops ...opRec) bool {
	order := o.tr.next()
	for i := range ops {
		ops[i].order, ops[i].gw = order, o.a.gw
	}
	switch o.scan(ctx, text) {
	case good:
		if err := o.placeConfirmed(ctx, ops); err != nil {
			o.tr.unplaced(fmt.Sprintf("%s/%s %q: %v", o.a.gw, o.dev, text, err))
		}
		o.tr.record(confirmed, ops...)
		return true
	case unheard:
		o.tr.record(unknown, ops...)
	}
	return false
}

// keys of one device's own workload.
func (o *operator) key(kind string) stockKey {
	name := fmt.Sprintf("%s-%s-%s", kind, o.a.gw, o.dev)
	return stockKey{WH: o.a.wh, Loc: name, SKU: name}
}

func (o *operator) moveKeys() (from, to stockKey) {
	sku := fmt.Sprintf("M-%s-%s", o.a.gw, o.dev)
	return stockKey{o.a.wh, "M1-" + o.a.gw + "-" + o.dev, sku}, stockKey{o.a.wh, "M2-" + o.a.gw + "-" + o.dev, sku}
}

// declare registers the device's keys with the tracker.
func (o *operator) declare() {
	o.tr.declare(o.key("R"), primary, +1, 0)
	o.tr.declare(o.key("P"), primary, -1, prestock)
	from, to := o.moveKeys()
	o.tr.declare(from, secondary, -1, prestock)
	o.tr.declare(to, primary, +1, 0)
	o.tr.declare(o.key("A"), primary, +1, 0)
	o.tr.declare(o.key("C"), primary, 0, 0)
}

// setup stocks the keys picks and moves draw from. It runs before any
// fault, so every scan must be accepted.
func (o *operator) setup(ctx context.Context) error {
	p := o.key("P")
	from, _ := o.moveKeys()
	for _, k := range []stockKey{p, from} {
		if !o.expect(ctx, "CMD:RECEIVE", "LOC:"+k.Loc, fmt.Sprintf("QTY:%d", prestock)) ||
			!o.commit(ctx, "SKU:"+k.SKU, opRec{key: k, qty: prestock}) ||
			!o.expect(ctx, "CMD:DONE") {
			return fmt.Errorf("set-up scans on %s/%s were not all accepted (no fault was active): see %s", o.a.gw, o.dev, o.a.logPath)
		}
	}
	return nil
}

// run performs random sessions until ctx ends or stop says so.
func (o *operator) run(ctx context.Context, stop func() bool) {
	for ctx.Err() == nil && !stop() {
		n := 1 + o.rnd.IntN(12)
		switch r := o.rnd.IntN(100); {
		case r < 30:
			o.receive(ctx, n)
		case r < 55:
			o.pick(ctx, n)
		case r < 75:
			o.move(ctx, n)
		case r < 93:
			o.adjust(ctx, n)
		default:
			o.count(ctx)
		}
	}
}

// itemSession runs CMD:kind LOC:loc, then n item scans each committing
// one op, then CMD:DONE; any surprise ends it with a recover.
func (o *operator) itemSession(ctx context.Context, cmd string, k stockKey, n int, pre []string, each []string, qty int64) {
	if !o.expect(ctx, append([]string{"CMD:" + cmd, "LOC:" + k.Loc}, pre...)...) {
		o.recover(ctx)
		return
	}
	for i := 0; i < n; i++ {
		if !o.expect(ctx, each...) || !o.commit(ctx, "SKU:"+k.SKU, opRec{key: k, qty: qty}) {
			o.recover(ctx)
			return
		}
	}
	if !o.expect(ctx, "CMD:DONE") {
		o.recover(ctx)
	}
}

func (o *operator) receive(ctx context.Context, n int) {
	o.itemSession(ctx, "RECEIVE", o.key("R"), n, nil, nil, +1)
}

func (o *operator) pick(ctx context.Context, n int) {
	o.itemSession(ctx, "PICK", o.key("P"), n, nil, nil, -1)
}

func (o *operator) adjust(ctx context.Context, n int) {
	o.itemSession(ctx, "ADJUST", o.key("A"), n, []string{"REASON:FOUND"}, []string{"QTY:+1"}, +1)
}

// move carries n units from M1 to M2: n item scans, then LOC:to commits n
// move ops at once.
func (o *operator) move(ctx context.Context, n int) {
	from, to := o.moveKeys()
	if !o.expect(ctx, "CMD:MOVE", "LOC:"+from.Loc) {
		o.recover(ctx)
		return
	}
	for i := 0; i < n; i++ {
		if !o.expect(ctx, "SKU:"+from.SKU) {
			o.recover(ctx)
			return
		}
	}
	ops := make([]opRec, 0, 2*n)
	for i := 0; i < n; i++ {
		ops = append(ops, opRec{key: from, qty: -1, mirror: true}, opRec{key: to, qty: +1})
	}
	if !o.commit(ctx, "LOC:"+to.Loc, ops...) || !o.expect(ctx, "CMD:DONE") {
		o.recover(ctx)
	}
}

// count counts the device's own C location with a quantity no earlier
// count of it used, so the final on-hand names the count that won.
func (o *operator) count(ctx context.Context) {
	k := o.key("C")
	o.countN++
	q := o.countN
	if !o.expect(ctx, "CMD:COUNT", "LOC:"+k.Loc, fmt.Sprintf("QTY:%d", q), "SKU:"+k.SKU) ||
		!o.commit(ctx, "CMD:DONE", opRec{key: k, qty: q, count: true}) {
		o.recover(ctx)
	}
}
