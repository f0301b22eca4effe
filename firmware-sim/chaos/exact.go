package chaos

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"

	"github.com/shelfsync/shelfsync/testbed"
)

// gwSeq names one op: the gateway that committed it and its seq there.
type gwSeq struct {
	GW  string
	Seq uint64
}

func (g gwSeq) String() string { return fmt.Sprintf("%s seq %d", g.GW, g.Seq) }

// logEntry is one op of a key's entry in the server's op log, as
// GET /api/v1/stock/history lists it (in merge order, with the running
// on-hand the merge rule gives).
type logEntry struct {
	Gateway string `json:"gateway"`
	Seq     uint64 `json:"seq"`
	Qty     int64  `json:"qty"`
	Count   bool   `json:"count"`
	OnHand  int64  `json:"on_hand"`
}

// fetchHistory reads key k's ops from the server's op log.
func fetchHistory(ctx context.Context, base string, k stockKey) ([]logEntry, error) {
	var body struct {
		Items []logEntry `json:"items"`
	}
	q := url.Values{"warehouse": {k.WH}, "location": {k.Loc}, "sku": {k.SKU}}
	err := testbed.GetJSON(ctx, base+"/api/v1/stock/history?"+q.Encode(), &body)
	return body.Items, err
}

// exactCheck compares every confirmed op, by (gateway, seq), with the
// server's op log, and the op log with the ledger. It returns exact counts:
//
//   - lost: confirmed ops missing from the op log of a key they touch, and
//     ops the op log holds but the ledger's on-hand does not reflect;
//   - dup: a (gateway, seq) entered twice in one key's op log; an applied op
//     that neither a confirmed scan nor an unheard one explains (an op
//     committed or applied again under another seq); and applications the
//     ledger's on-hand shows beyond its op log. The op log is keyed by
//     (gateway, seq), so an op applied again under the same seq leaves no
//     second entry there: only the ledger shows it, as on-hand that the
//     fold of the op log (the history's running on-hand) does not give.
//     That difference is counted in ops of the key's own quantities; an
//     op applied twice before a count that overrides it changes nothing
//     anyone can see, and is not counted.
//
// conf are the confirmed ops (each with its seq; a move's source side
// shares the seq of its destination), unk the ops of scans whose beep
// never came, hist each key's op log and ledger each key's on-hand. Every
// key of ledger and of the ops must be in hist: a key whose op log could
// not be read is a check that did not run, reported as a problem.
func exactCheck(conf, unk []opRec, hist map[stockKey][]logEntry, ledger map[stockKey]int64) (lost, dup int64, problems []string) {
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	type at struct {
		gs gwSeq
		k  stockKey
	}
	entries := map[at]int{}
	keys := map[stockKey]bool{}
	for k, es := range hist {
		keys[k] = true
		for _, e := range es {
			entries[at{gwSeq{e.Gateway, e.Seq}, k}]++
		}
	}
	for k := range ledger {
		keys[k] = true
	}
	confirmedAt := map[at]bool{}
	byOp := map[gwSeq][]opRec{}
	var order []gwSeq
	for _, r := range conf {
		keys[r.key] = true
		gs := gwSeq{r.gw, r.seq}
		if r.seq == 0 {
			continue // not placed: reported by the caller
		}
		if _, ok := byOp[gs]; !ok {
			order = append(order, gs)
		}
		byOp[gs] = append(byOp[gs], r)
		confirmedAt[at{gs, r.key}] = true
	}
	for _, r := range unk {
		keys[r.key] = true
	}
	sorted := make([]stockKey, 0, len(keys))
	for k := range keys {
		if _, ok := hist[k]; !ok {
			problem("op log of %s not read: the exact check did not run for it", k)
			continue
		}
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].String() < sorted[j].String() })

	// Every confirmed op is in the op log of every key it touches.
	for _, gs := range order {
		var missing []string
		for _, r := range byOp[gs] {
			if _, read := hist[r.key]; read && entries[at{gs, r.key}] == 0 {
				missing = append(missing, r.key.String())
			}
		}
		if len(missing) > 0 {
			lost++
			problem("lost: confirmed op %s is not in the server's op log of %v", gs, missing)
		}
	}

	// Every other entry is an unheard scan's op, each used once.
	unkLeft := map[stockKey][]opRec{}
	for _, r := range unk {
		unkLeft[r.key] = append(unkLeft[r.key], r)
	}
	for _, k := range sorted {
		for _, e := range hist[k] {
			gs := gwSeq{e.Gateway, e.Seq}
			n := entries[at{gs, k}]
			if n > 1 {
				if e == firstOf(hist[k], gs) {
					dup += int64(n - 1)
					problem("duplicated: %s is in the op log of %s %d times", gs, k, n)
				}
				continue
			}
			if confirmedAt[at{gs, k}] {
				continue
			}
			left := unkLeft[k]
			i := slices.IndexFunc(left, func(r opRec) bool { return r.gw == e.Gateway && r.qty == e.Qty && r.count == e.Count })
			if i < 0 {
				dup++
				problem("duplicated: %s applied %+d to %s, which no confirmed or unheard scan explains", gs, e.Qty, k)
				continue
			}
			unkLeft[k] = slices.Delete(left, i, i+1)
		}
	}

	// The ledger's on-hand is the fold of the op log.
	for _, k := range sorted {
		es := hist[k]
		var fold int64
		if len(es) > 0 {
			fold = es[len(es)-1].OnHand
		}
		d := ledger[k] - fold
		if d == 0 {
			continue
		}
		n, q := explainDiff(es, d)
		switch {
		case n > 0:
			dup += n
			problem("duplicated: %s on-hand %d, its op log folds to %d: %d application(s) of %+d beyond the log", k, ledger[k], fold, n, q)
		case n < 0:
			lost += -n
			problem("lost: %s on-hand %d, its op log folds to %d: %d op(s) of %+d logged but not in the ledger", k, ledger[k], fold, -n, q)
		default:
			dup++
			problem("duplicated: %s on-hand %d, its op log folds to %d, which no whole number of its ops' applications explains", k, ledger[k], fold)
		}
	}
	return lost, dup, problems
}

func firstOf(es []logEntry, gs gwSeq) logEntry {
	for _, e := range es {
		if e.Gateway == gs.GW && e.Seq == gs.Seq {
			return e
		}
	}
	return logEntry{}
}

// explainDiff finds the quantity q of a delta after the key's last count
// and the fewest applications n (negative: missing ones) with n·q = d.
func explainDiff(es []logEntry, d int64) (n, q int64) {
	start := 0
	for i, e := range es {
		if e.Count {
			start = i + 1
		}
	}
	for _, e := range es[start:] {
		if e.Qty == 0 || d%e.Qty != 0 {
			continue
		}
		if m := d / e.Qty; n == 0 || abs(m) < abs(n) {
			n, q = m, e.Qty
		}
	}
	return n, q
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
