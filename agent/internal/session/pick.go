package session

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

func open(t protocol.Task) bool { return t.Status == "" || t.Status == "open" }

// orderTasks returns the open pick tasks of an order this gateway holds,
// in pick order: by location, then expiry (FEFO), then id.
func orderTasks(l Lookup, order string) []protocol.Task {
	var out []protocol.Task
	for _, t := range l.OrderTasks(order) {
		if t.Kind == "pick" && t.Order == order && open(t) {
			out = append(out, t)
		}
	}
	sortTasks(out)
	return out
}

func sortTasks(ts []protocol.Task) {
	sort.Slice(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.Location != b.Location {
			return a.Location < b.Location
		}
		if a.Expiry != b.Expiry {
			return a.Expiry < b.Expiry
		}
		return a.ID < b.ID
	})
}

// scope returns the tasks a pick session works through (none: a free pick).
func scope(s *State, l Lookup) []protocol.Task {
	if s.Task != "" {
		if t, ok := l.Task(s.Task); ok && open(t) {
			return []protocol.Task{t}
		}
		return nil
	}
	if s.Order != "" {
		return orderTasks(l, s.Order)
	}
	return nil
}

func remaining(l Lookup, t protocol.Task) int64 { return t.Qty - l.Picked(t.ID) }

// taskScan handles ORD: and TASK: labels.
func taskScan(d Station, in Input, env Env) Outcome {
	s := d.Session
	l := data(env)
	if in.Kind == scan.KindOrder {
		if s.Kind != Pick {
			return bad(d, "ORD: only belongs in a PICK session")
		}
		if s.Order != "" || s.Task != "" {
			return bad(d, "picking %s: scan CMD:DONE before another order or task", s.Order+s.Task)
		}
		s.Order = in.Value
		ts := orderTasks(l, in.Value)
		if len(ts) == 0 {
			return good(d, "picking order "+in.Value+" (no pick tasks for it at this gateway: picks are recorded against the order)")
		}
		return good(d, fmt.Sprintf("picking order %s: %d task(s), first at %s", in.Value, len(ts), ts[0].Location))
	}
	t, ok := l.Task(in.Value)
	switch s.Kind {
	case Pick:
		if s.Order != "" || s.Task != "" {
			return bad(d, "picking %s: scan CMD:DONE before another order or task", s.Order+s.Task)
		}
		if !ok {
			return bad(d, "task %s is not known at this gateway: check the label, or wait for the task to arrive", in.Value)
		}
		if t.Kind != "pick" {
			return bad(d, "task %s is a %s task: scan it in a CMD:%s session", t.ID, t.Kind, strings.ToUpper(t.Kind))
		}
		if !open(t) {
			return bad(d, "task %s is %s", t.ID, t.Status)
		}
		s.Task = t.ID
		return good(d, fmt.Sprintf("task %s: pick %d × %s at %s", t.ID, remaining(l, t), t.SKU, t.Location))
	case Count:
		if s.Task != "" || len(s.Lines) > 0 {
			return bad(d, "counting %s: scan CMD:DONE before another task", s.Location)
		}
		if !ok {
			return bad(d, "task %s is not known at this gateway", in.Value)
		}
		if t.Kind != "count" {
			return bad(d, "task %s is a %s task, not a count", t.ID, t.Kind)
		}
		if !open(t) {
			return bad(d, "task %s is %s", t.ID, t.Status)
		}
		if s.Location != "" && t.Location != "" && s.Location != t.Location {
			return bad(d, "counting %s but task %s is for %s", s.Location, t.ID, t.Location)
		}
		s.Task = t.ID
		if t.Location != "" {
			s.Location = t.Location
		}
		return good(d, "count task "+t.ID+": count every item on "+s.Location)
	}
	return bad(d, "TASK: only belongs in a PICK or COUNT session")
}

// pickLocation checks a pick location against the session's tasks.
func pickLocation(d Station, in Input, env Env) Outcome {
	s := d.Session
	l := data(env)
	ts := scope(s, l)
	if len(ts) == 0 {
		s.Location = in.Value
		return good(d, "location "+in.Value)
	}
	var want []string
	for _, t := range ts {
		if remaining(l, t) <= 0 {
			continue
		}
		if t.Location == in.Value {
			s.Location = in.Value
			return good(d, fmt.Sprintf("at %s: pick %d × %s", in.Value, remaining(l, t), t.SKU))
		}
		want = append(want, t.Location)
	}
	if len(want) == 0 {
		return bad(d, "nothing left to pick for %s: scan CMD:DONE", s.Order+s.Task)
	}
	return bad(d, "wrong location %s: pick at %s", in.Value, strings.Join(want, ", "))
}

// pickItem commits one pick; against tasks it refuses a wrong item, a
// wrong lot (FEFO: the task names the lot to take) and more than the task.
func pickItem(d Station, it protocol.Item, in Input, op protocol.Op, env Env) Outcome {
	s := d.Session
	l := data(env)
	op.Kind = protocol.OpPick
	if why := unpickable(l, it, op, env); why != "" {
		return bad(d, "%s; nothing recorded", why)
	}
	ts := scope(s, l)
	if len(ts) == 0 {
		if s.Order != "" || s.Task != "" {
			op.Refs = &protocol.Refs{Order: s.Order, Task: s.Task}
		}
		return good(d, fmt.Sprintf("picked %d × %s from %s", op.Qty, op.SKU, s.Location), stamp(op, d, env))
	}
	var here []protocol.Task
	for _, t := range ts {
		if t.Location == s.Location && remaining(l, t) > 0 {
			here = append(here, t)
		}
	}
	var skuTasks []protocol.Task
	for _, t := range here {
		if t.SKU == op.SKU {
			skuTasks = append(skuTasks, t)
		}
	}
	if len(skuTasks) == 0 {
		var want []string
		for _, t := range here {
			want = append(want, t.SKU)
		}
		if len(want) == 0 {
			return bad(d, "nothing left to pick at %s: scan the next LOC: or CMD:DONE", s.Location)
		}
		return bad(d, "wrong item %s: at %s pick %s; nothing recorded", op.SKU, s.Location, strings.Join(want, ", "))
	}
	t := skuTasks[0]
	if op.Lot != "" {
		found := false
		for _, c := range skuTasks {
			if c.Lot == "" || c.Lot == op.Lot {
				t, found = c, true
				break
			}
		}
		if !found {
			hint := ""
			if t.Expiry != "" {
				hint = fmt.Sprintf(" (expires %s first)", t.Expiry)
			}
			return bad(d, "wrong lot %s: pick lot %s%s; nothing recorded", op.Lot, t.Lot, hint)
		}
	}
	if op.Lot == "" {
		op.Lot = t.Lot
	}
	left := remaining(l, t)
	if op.Qty > left {
		return bad(d, "picking %d is more than the line: %d left of %s for task %s; nothing recorded", op.Qty, left, op.SKU, t.ID)
	}
	op.Refs = &protocol.Refs{Order: t.Order, OrderLine: t.OrderLine, Task: t.ID}
	msg := fmt.Sprintf("picked %d × %s from %s", op.Qty, op.SKU, s.Location)
	if left-op.Qty > 0 {
		msg += fmt.Sprintf(" (%d left)", left-op.Qty)
	} else {
		msg += " (task " + t.ID + " complete)"
	}
	return good(d, msg, stamp(op, d, env))
}

// pickDone finishes a pick session. Against tasks it closes each of them
// (a notice per task) and reports what was picked short: the remainder of
// the order line stays open on the server.
func pickDone(d Station, env Env) Outcome {
	s := d.Session
	l := data(env)
	ts := scope(s, l)
	d.Session = nil
	if len(ts) == 0 {
		return good(d, "PICK session finished")
	}
	var notices []protocol.Notice
	var shorts []string
	for _, t := range ts {
		picked := l.Picked(t.ID)
		n := notice(d, env, protocol.NoticeTaskClose, t.ID, t.Location, t.SKU, picked)
		notices = append(notices, n)
		if picked < t.Qty {
			shorts = append(shorts, fmt.Sprintf("%s: %d of %d × %s at %s", t.ID, picked, t.Qty, t.SKU, t.Location))
		}
	}
	var out Outcome
	if len(shorts) > 0 {
		out = warn(d, "short pick recorded — "+strings.Join(shorts, "; ")+"; the remainder stays open")
	} else {
		out = good(d, fmt.Sprintf("%d task(s) complete", len(ts)))
	}
	out.Notices = notices
	return out
}

// unpickable says why the scanned units may not be picked: a lot past its
// expiry date (GS1 (17) in the scan), one within the item's minimum
// remaining shelf life, or a lot the local view holds at the location
// only on hold, damaged or expired.
func unpickable(l Lookup, it protocol.Item, op protocol.Op, env Env) string {
	today := env.Now.UTC()
	switch {
	case op.Expiry == "":
	case op.Expiry < today.Format(time.DateOnly):
		return fmt.Sprintf("lot %s of %s expired on %s: set it aside, do not ship it", op.Lot, op.SKU, op.Expiry)
	case it.MinShelfDays > 0 && op.Expiry < today.AddDate(0, 0, it.MinShelfDays).Format(time.DateOnly):
		return fmt.Sprintf("lot %s of %s expires on %s, within its minimum shelf life of %d days: pick another lot", op.Lot, op.SKU, op.Expiry, it.MinShelfDays)
	}
	if op.Lot == "" {
		return ""
	}
	var avail, other int64
	var st protocol.StockStatus
	for _, r := range l.Stock(op.Location, op.SKU) {
		if r.Lot != op.Lot || r.Owner != op.Owner || r.OnHand <= 0 {
			continue
		}
		if r.Status == protocol.StatusAvailable {
			avail += r.OnHand
		} else {
			other, st = other+r.OnHand, r.Status
		}
	}
	if avail == 0 && other > 0 {
		return fmt.Sprintf("lot %s of %s at %s is %s, not for picking", op.Lot, op.SKU, op.Location, st)
	}
	return ""
}
