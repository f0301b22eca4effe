package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Conflict kinds the scenarios provoke (docs/DESIGN.md, "Conflicts").
const (
	kindNegative = "negative-stock"
	kindVariance = "variance"
	kindRace     = "count-race"
)

// provoked is a conflict the schedule caused with confirmed scans: the
// server must list it.
type provoked struct {
	Kind     string
	Key      stockKey
	Observed int64 // variance: the counted quantity; else ignored
	Why      string
}

// scenarios drives the scenario scanner ("x") of every gateway: short
// scripted sessions on two gateways of one warehouse that provoke a
// negative stock, a count variance or a count race, with the ops recorded
// like every other.
type scenarios struct {
	ops  map[string]*operator // by gateway
	byWH map[string][]string  // warehouse → gateways
	whs  []string
	rnd  *rand.Rand

	mu       sync.Mutex
	provoked []provoked
	run      int
}

func (s *scenarios) add(p provoked) {
	s.mu.Lock()
	s.provoked = append(s.provoked, p)
	s.mu.Unlock()
}

func (s *scenarios) list() []provoked {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]provoked(nil), s.provoked...)
}

// loop runs one scenario every gap until ctx ends or stop says so.
func (s *scenarios) loop(ctx context.Context, gap time.Duration, stop func() bool) {
	for ctx.Err() == nil && !stop() {
		sleep(ctx, gap)
		if ctx.Err() != nil {
			return
		}
		wh := s.whs[s.rnd.IntN(len(s.whs))]
		gws := s.byWH[wh]
		if len(gws) < 2 {
			continue
		}
		i := s.rnd.IntN(len(gws))
		j := (i + 1 + s.rnd.IntN(len(gws)-1)) % len(gws)
		a, b := s.ops[gws[i]], s.ops[gws[j]]
		s.run++
		switch s.run % 3 {
		case 0:
			s.negative(ctx, a, b, s.run)
		case 1:
			s.variance(ctx, a, s.run)
		case 2:
			s.race(ctx, a, b, s.run)
		}
	}
}

// receiveQty receives qty of k in one session; it reports a good beep on
// the committing scan.
func receiveQty(ctx context.Context, o *operator, k stockKey, qty int64, either bool) bool {
	if !o.expect(ctx, "CMD:RECEIVE", "LOC:"+k.Loc, fmt.Sprintf("QTY:%d", qty)) {
		o.recover(ctx)
		return false
	}
	ok := o.commit(ctx, "SKU:"+k.SKU, opRec{key: k, qty: qty, either: either})
	if !ok || !o.expect(ctx, "CMD:DONE") {
		o.recover(ctx)
	}
	return ok
}

func pickOne(ctx context.Context, o *operator, k stockKey) bool {
	if !o.expect(ctx, "CMD:PICK", "LOC:"+k.Loc) {
		o.recover(ctx)
		return false
	}
	ok := o.commit(ctx, "SKU:"+k.SKU, opRec{key: k, qty: -1})
	if !ok || !o.expect(ctx, "CMD:DONE") {
		o.recover(ctx)
	}
	return ok
}

// negative: a receives one unit, then a and b each pick it — whatever the
// order the ops reach the server, the key ends at −1.
func (s *scenarios) negative(ctx context.Context, a, b *operator, n int) {
	k := stockKey{a.a.wh, fmt.Sprintf("N-%d", n), fmt.Sprintf("NEG-%d", n)}
	r := receiveQty(ctx, a, k, 1, false)
	p1 := pickOne(ctx, a, k)
	p2 := pickOne(ctx, b, k)
	if r && p1 && p2 {
		s.add(provoked{Kind: kindNegative, Key: k, Why: fmt.Sprintf("%s received 1, %s and %s picked 1 each", a.a.gw, a.a.gw, b.a.gw)})
	}
}

// variance: a receives 5, then counts 3 at the same location.
func (s *scenarios) variance(ctx context.Context, a *operator, n int) {
	k := stockKey{a.a.wh, fmt.Sprintf("V-%d", n), fmt.Sprintf("VAR-%d", n)}
	receiveQty(ctx, a, k, 5, false)
	if !a.expect(ctx, "CMD:COUNT", "LOC:"+k.Loc, "QTY:3", "SKU:"+k.SKU) {
		a.recover(ctx)
		return
	}
	if a.commit(ctx, "CMD:DONE", opRec{key: k, qty: 3, count: true}) {
		s.add(provoked{Kind: kindVariance, Key: k, Observed: 3, Why: fmt.Sprintf("%s received 5 then counted 3", a.a.gw)})
	} else {
		a.recover(ctx)
	}
}

// race: a has a count of the location open, b opens a receive there; b's
// receive and a's count commit back to back, within the skew window.
func (s *scenarios) race(ctx context.Context, a, b *operator, n int) {
	k := stockKey{a.a.wh, fmt.Sprintf("Q-%d", n), fmt.Sprintf("RACE-%d", n)}
	if !a.expect(ctx, "CMD:COUNT", "LOC:"+k.Loc, "QTY:7", "SKU:"+k.SKU) {
		a.recover(ctx)
		return
	}
	if !b.expect(ctx, "CMD:RECEIVE", "LOC:"+k.Loc) {
		b.recover(ctx)
		a.recover(ctx)
		return
	}
	t0 := time.Now()
	okB := b.commit(ctx, "SKU:"+k.SKU, opRec{key: k, qty: 1, either: true})
	okA := a.commit(ctx, "CMD:DONE", opRec{key: k, qty: 7, count: true, either: true})
	took := time.Since(t0)
	if !okA {
		a.recover(ctx)
	}
	if !okB || !b.expect(ctx, "CMD:DONE") {
		b.recover(ctx)
	}
	if okA && okB && took < 2*time.Second {
		s.add(provoked{Kind: kindRace, Key: k, Why: fmt.Sprintf("%s counted while %s received, %s apart", a.a.gw, b.a.gw, took.Round(time.Millisecond))})
	}
}
