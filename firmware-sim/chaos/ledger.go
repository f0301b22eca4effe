package chaos

import (
	"sync"
)

// status is what an operator knows about an op-producing scan.
type status uint8

const (
	// confirmed: the operator heard a good (or warn) beep, so the agent
	// committed the op durably; it must reach the server ledger.
	confirmed status = iota + 1
	// unknown: the scan was sent but no beep came (the agent was killed or
	// did not answer in time): the op may or may not be committed.
	unknown
)

// role says how a key's mismatches are counted.
type role uint8

const (
	// primary keys carry one kind of unit op each (receives at R, picks at
	// P, moves into M2, adjusts at A, counts at C): their value tells how
	// many ops were applied, so a difference is lost or duplicated ops.
	primary role = iota
	// secondary keys mirror a primary one (the source of moves): a
	// difference is a ledger mismatch, not counted twice.
	secondary
	// scenario keys take a few ops from several gateways to provoke a
	// conflict; they are solved by brute force.
	scenario
)

// opRec is one op an operator caused (or may have caused).
type opRec struct {
	order  int64 // harness order: when the scan that commits it was sent
	gw     string
	seq    uint64 // confirmed ops: the agent's seq for it (0: not placed)
	st     status
	key    stockKey
	qty    int64
	count  bool // a count setting key to qty, else a delta of qty
	either bool // its merge order against the other gateway's op on the key is not known
	mirror bool // the source side of a move: the op is tallied on its destination
}

// tracker records every op the simulated operators caused, per key.
type tracker struct {
	mu    sync.Mutex
	order int64
	keys  map[stockKey]*keyRec
	byGW  map[string]*gwTally
	// unplaced says why confirmed ops could not be given their seq: the
	// exact check cannot run for them.
	unplacedOps []string
}

type keyRec struct {
	role     role
	unit     int64 // primary delta keys: the unit op's qty (+1 or −1)
	prestock int64 // primary/secondary: the set-up receive's qty (0: none)
	ops      []opRec
}

type gwTally struct {
	confirmed, unknown int
}

func newTracker() *tracker {
	return &tracker{keys: map[stockKey]*keyRec{}, byGW: map[string]*gwTally{}}
}

// declare registers a key and how to judge it.
func (t *tracker) declare(k stockKey, r role, unit, prestock int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.keys[k]; !ok {
		t.keys[k] = &keyRec{role: r, unit: unit, prestock: prestock}
	}
}

// next returns the harness order for a scan about to be sent.
func (t *tracker) next() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.order++
	return t.order
}

// record adds ops committed together by one scan with status st.
func (t *tracker) record(st status, ops ...opRec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range ops {
		o.st = st
		kr, ok := t.keys[o.key]
		if !ok {
			kr = &keyRec{role: scenario}
			t.keys[o.key] = kr
		}
		kr.ops = append(kr.ops, o)
		if o.mirror {
			continue
		}
		g := t.byGW[o.gw]
		if g == nil {
			g = &gwTally{}
			t.byGW[o.gw] = g
		}
		if st == confirmed {
			g.confirmed++
		} else {
			g.unknown++
		}
	}
}

// totals returns the confirmed and unknown op counts.
func (t *tracker) totals() (conf, unk int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, g := range t.byGW {
		conf += g.confirmed
		unk += g.unknown
	}
	return conf, unk
}

// unplaced notes a confirmed scan whose ops could not be placed.
func (t *tracker) unplaced(why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unplacedOps = append(t.unplacedOps, why)
}
