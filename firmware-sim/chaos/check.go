package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"time"
)

// verdict is the outcome of judging one key.
type verdict struct {
	lost, dup int64
	mismatch  string // a difference that is not a count of ops
}

// judge explains the server's on-hand v of key k from the ops the
// operators caused: every confirmed op applied exactly once, every
// unknown op at most once. It returns the fewest lost and duplicated ops
// that explain v, or a mismatch when nothing does.
func judge(k stockKey, kr *keyRec, v int64) verdict {
	switch {
	case kr.role != scenario && kr.unit != 0 && unitOps(kr):
		return judgeUnit(k, kr, v)
	case kr.role == primary && kr.unit == 0 && allCounts(kr):
		return judgeCounts(k, kr, v)
	}
	return judgeSmall(k, kr, v)
}

func unitOps(kr *keyRec) bool {
	for _, o := range kr.ops {
		if o.count || (o.qty != kr.unit && (kr.prestock == 0 || o.qty != kr.prestock)) {
			return false
		}
	}
	return true
}

func allCounts(kr *keyRec) bool {
	for _, o := range kr.ops {
		if !o.count {
			return false
		}
	}
	return true
}

// judgeUnit: a key whose ops are unit deltas and at most a few set-up
// receives; v tells how many of each were applied.
func judgeUnit(k stockKey, kr *keyRec, v int64) verdict {
	var c, u, pc, pu int64
	for _, o := range kr.ops {
		switch {
		case o.qty == kr.unit && o.st == confirmed:
			c++
		case o.qty == kr.unit:
			u++
		case o.st == confirmed:
			pc++
		default:
			pu++
		}
	}
	best := verdict{lost: -1}
	maxP := int64(0)
	if kr.prestock != 0 {
		maxP = pc + pu + 1
	}
	for p := int64(0); p <= maxP; p++ {
		n := (v - p*kr.prestock) * kr.unit // unit is ±1
		lost := max(0, pc-p) + max(0, c-n)
		dup := max(0, p-pc-pu) + max(0, n-c-u)
		if best.lost < 0 || lost+dup < best.lost+best.dup {
			best = verdict{lost: lost, dup: dup}
		}
	}
	if best.lost+best.dup > 0 {
		best.mismatch = fmt.Sprintf("%s: server on-hand %d, but %d confirmed and %d unknown unit ops of %+d (set-up %d) allow %s",
			k, v, c, u, kr.unit, pc*kr.prestock, rangeText(pc*kr.prestock+c*kr.unit, pc*kr.prestock+(c+u)*kr.unit))
		if kr.role == secondary { // mirrored on a primary key: reported, not counted twice
			best.lost, best.dup = 0, 0
		}
	}
	return best
}

func rangeText(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	if a == b {
		return fmt.Sprint(a)
	}
	return fmt.Sprintf("%d..%d", a, b)
}

// judgeCounts: a location only one device counts, each count with a
// quantity of its own; the count last in order must win.
func judgeCounts(k stockKey, kr *keyRec, v int64) verdict {
	ops := slices.Clone(kr.ops)
	sort.Slice(ops, func(i, j int) bool { return ops[i].order < ops[j].order })
	last := -1
	for i, o := range ops {
		if o.st == confirmed {
			last = i
		}
	}
	if last < 0 && v == 0 {
		return verdict{}
	}
	for i := max(last, 0); i < len(ops); i++ {
		if ops[i].qty == v && (i == last || ops[i].st == unknown) {
			return verdict{}
		}
	}
	// An earlier count won: the confirmed ones after it are missing.
	for i := last; i >= 0; i-- {
		if ops[i].qty == v || (i == 0 && v == 0) {
			var lost int64
			for _, o := range ops[i+1:] {
				if o.st == confirmed {
					lost++
				}
			}
			if v == 0 && ops[i].qty != 0 && ops[0].st == confirmed {
				lost++
			}
			return verdict{lost: lost, mismatch: fmt.Sprintf("%s: server on-hand %d is an earlier count; the last confirmed count set %d", k, v, ops[last].qty)}
		}
	}
	want := int64(0)
	if last >= 0 {
		want = ops[last].qty
	}
	return verdict{mismatch: fmt.Sprintf("%s: server on-hand %d matches no count; the last confirmed count set %d", k, v, want)}
}

// judgeSmall tries every way a few ops could have been applied — each op
// 0, 1 or 2 times, ops marked either on both sides of a count — and keeps
// the explanation with the fewest lost and duplicated ops.
func judgeSmall(k stockKey, kr *keyRec, v int64) verdict {
	ops := slices.Clone(kr.ops)
	if len(ops) > 9 {
		var sum int64
		for _, o := range ops {
			if o.st == confirmed && !o.count {
				sum += o.qty
			}
		}
		if sum == v {
			return verdict{}
		}
		return verdict{mismatch: fmt.Sprintf("%s: server on-hand %d, %d ops too many to explain", k, v, len(ops))}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].order < ops[j].order })
	m := make([]int, len(ops))
	best := verdict{lost: -1}
	var try func(i int)
	try = func(i int) {
		if i == len(ops) {
			if !explains(ops, m, v) {
				return
			}
			var lost, dup int64
			for j, o := range ops {
				switch {
				case o.st == confirmed && m[j] == 0:
					lost++
				case m[j] == 2:
					dup++
				}
			}
			if best.lost < 0 || lost+dup < best.lost+best.dup {
				best = verdict{lost: lost, dup: dup}
			}
			return
		}
		top := 2
		if ops[i].count {
			top = 1 // a count applied twice is the same count
		}
		for m[i] = 0; m[i] <= top; m[i]++ {
			try(i + 1)
		}
	}
	try(0)
	if best.lost < 0 {
		return verdict{mismatch: fmt.Sprintf("%s: server on-hand %d cannot come from the %d ops scanned there", k, v, len(ops))}
	}
	if best.lost+best.dup > 0 {
		best.mismatch = fmt.Sprintf("%s: server on-hand %d is explained only with %d op(s) lost and %d duplicated", k, v, best.lost, best.dup)
	}
	return best
}

// explains reports whether applying ops[i] m[i] times can give v under the
// merge rule: the last count in order sets the base, later deltas add; a
// delta and a count both marked either may be in any order.
func explains(ops []opRec, m []int, v int64) bool {
	c := -1
	for i, o := range ops {
		if o.count && m[i] > 0 {
			c = i
		}
	}
	var fixed, free int64
	var base int64
	for i, o := range ops {
		if o.count || m[i] == 0 {
			continue
		}
		d := o.qty * int64(m[i])
		switch {
		case c < 0 || i > c && !(o.either && ops[c].either):
			fixed += d
		case o.either && ops[c].either:
			free += d
		}
	}
	if c >= 0 {
		base = ops[c].qty
	}
	return base+fixed == v || (free != 0 && base+fixed+free == v)
}

// conflictRow is the part of a listed conflict the check reads.
type conflictRow struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Status    string `json:"status"`
	Holds     *bool  `json:"holds"`
	Warehouse string `json:"warehouse"`
	Location  string `json:"location"`
	SKU       string `json:"sku"`
	Observed  int64  `json:"observed"`
}

// errNoConflictAPI says the server has no conflict API to check against.
type errNoConflictAPI struct{ code int }

func (e errNoConflictAPI) Error() string {
	return fmt.Sprintf("GET /api/v1/conflicts answered %d: the server has no conflict API yet", e.code)
}

// fetchConflicts lists the conflicts of wh, following pagination cursors
// when the API gives one.
var httpc = &http.Client{Timeout: 5 * time.Second}

func fetchConflicts(ctx context.Context, base, wh string) ([]conflictRow, error) {
	var out []conflictRow
	url := base + "/api/v1/conflicts?warehouse=" + wh + "&limit=100000"
	for page := 0; page < 1000; page++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotFound, http.StatusNotImplemented, http.StatusMethodNotAllowed:
			return nil, errNoConflictAPI{resp.StatusCode}
		default:
			return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
		}
		var rows []conflictRow
		var obj struct {
			Items     []conflictRow `json:"items"`
			Conflicts []conflictRow `json:"conflicts"`
			Next      string        `json:"next"`
			Cursor    string        `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &rows); err != nil {
			if err := json.Unmarshal(body, &obj); err != nil {
				return nil, fmt.Errorf("GET %s: unreadable body: %w", url, err)
			}
			rows = append(obj.Items, obj.Conflicts...)
		}
		out = append(out, rows...)
		next := obj.Next
		if next == "" {
			next = obj.Cursor
		}
		if next == "" || len(rows) == 0 {
			return out, nil
		}
		url = base + "/api/v1/conflicts?warehouse=" + wh + "&cursor=" + next
	}
	return out, nil
}

// listed reports whether rows contain the provoked conflict p.
func listed(rows []conflictRow, p provoked) bool {
	for _, r := range rows {
		if r.Kind != p.Kind || r.Warehouse != p.Key.WH || r.Location != p.Key.Loc {
			continue
		}
		switch p.Kind {
		case kindRace: // a location count's race names the location only
			if r.SKU == "" || r.SKU == p.Key.SKU {
				return true
			}
		case kindVariance:
			if r.SKU == p.Key.SKU && r.Observed == p.Observed {
				return true
			}
		default:
			if r.SKU == p.Key.SKU {
				return true
			}
		}
	}
	return false
}
