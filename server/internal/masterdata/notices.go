package masterdata

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// noticeRecord is a gateway's notice as the server keeps it.
type noticeRecord struct {
	Notice protocol.Notice `cbor:"1,keyasint"`
	Taken  bool            `cbor:"2,keyasint,omitempty"` // acted on and acknowledged
	// Result is what taking a ship notice did (Options.OnShip).
	Result string `cbor:"3,keyasint,omitempty"`
}

// ReorderAlert is a reorder alert a gateway raised locally when a pick took
// a sku to or below its reorder point. Several gateways (and the server's
// own reorder check) may see the same crossing: one alert is kept per sku
// while it is open.
type ReorderAlert struct {
	SKU          string   `json:"sku" cbor:"1,keyasint"`
	OnHand       int64    `json:"on_hand" cbor:"2,keyasint"` // as the first gateway saw it after its pick
	ReorderPoint int64    `json:"reorder_point" cbor:"3,keyasint"`
	SuggestedQty int64    `json:"suggested_qty" cbor:"4,keyasint"`
	RaisedBy     []string `json:"raised_by" cbor:"5,keyasint"` // gateway/notice id
	AtMS         int64    `json:"at_ms" cbor:"6,keyasint"`
	Status       string   `json:"status" cbor:"7,keyasint"` // open, closed
}

// HandleNotices records the notices of a gateway's status and acts on each
// whose ops the server has applied (upstream watermark ≥ its seq); the
// others wait for Applied. It reports whether the downstream log grew.
func (s *Service) HandleNotices(ctx context.Context, wh, gw string, ns []protocol.Notice) (bool, error) {
	grew := false
	var shorts []protocol.Task
	for _, n := range ns {
		if n.ID == "" || strings.IndexByte(n.ID, 0) >= 0 || len(n.ID) > 256 {
			continue
		}
		if n.Kind == protocol.NoticeShip {
			took, err := s.ship(ctx, wh, gw, n)
			grew = grew || took
			if err != nil {
				return grew, fmt.Errorf("notice %s of %s/%s: %w", n.ID, wh, gw, err)
			}
			continue
		}
		var short *protocol.Task
		var alert *ReorderAlert
		took := false
		err := s.b.Update(func(tx store.Tx) error {
			short, alert, took = nil, nil, false
			var rec noticeRecord
			ok, err := getCBOR(tx, key(pNotice, wh, gw, n.ID), &rec)
			if err != nil || (ok && rec.Taken) {
				return err
			}
			rec.Notice = n
			wm, err := tx.Watermark(wh, gw)
			if err != nil {
				return err
			}
			if wm < n.Seq {
				return putCBOR(tx, key(pNotice, wh, gw, n.ID), rec)
			}
			short, alert, err = s.take(tx, wh, gw, &rec)
			took = true
			return err
		})
		grew = grew || (took && err == nil)
		if err != nil {
			return grew, fmt.Errorf("notice %s of %s/%s: %w", n.ID, wh, gw, err)
		}
		if short != nil {
			shorts = append(shorts, *short)
		}
		// After the commit, once: Update may run f more than once.
		if alert != nil && s.opt.OnReorder != nil {
			s.opt.OnReorder(wh, *alert)
		}
	}
	s.shorts(ctx, wh, shorts)
	return grew, nil
}

func (s *Service) shorts(ctx context.Context, wh string, ts []protocol.Task) {
	if s.opt.OnTaskShort == nil {
		return
	}
	for _, t := range ts {
		s.opt.OnTaskShort(ctx, wh, t)
	}
}

// Applied acts on the waiting notices of a gateway now covered by its
// upstream watermark wm. It reports whether the downstream log grew.
func (s *Service) Applied(ctx context.Context, wh, gw string, wm uint64) (bool, error) {
	var pending []noticeRecord
	err := s.b.View(func(tx store.Tx) error {
		pending = nil
		recs, err := listCBOR[noticeRecord](tx, pNotice, wh+"\x00"+gw)
		for _, r := range recs {
			if !r.Taken && r.Notice.Seq <= wm {
				pending = append(pending, r)
			}
		}
		return err
	})
	if err != nil || len(pending) == 0 {
		return false, err
	}
	ns := make([]protocol.Notice, 0, len(pending))
	for _, r := range pending {
		ns = append(ns, r.Notice)
	}
	return s.HandleNotices(ctx, wh, gw, ns)
}

// take acts on a notice and acknowledges it to the gateway, in tx. It
// returns the task closed short and the reorder alert opened, if any, for
// the caller to act on after the commit.
func (s *Service) take(tx store.Tx, wh, gw string, rec *noticeRecord) (*protocol.Task, *ReorderAlert, error) {
	n := rec.Notice
	var short *protocol.Task
	var alert *ReorderAlert
	var err error
	switch n.Kind {
	case protocol.NoticePOClose:
		_, err = closePO(tx, wh, n.Ref, gw, n.At)
	case protocol.NoticeTaskClose:
		short, err = closeTask(tx, wh, n, s.opt.Now().UnixMilli())
	case protocol.NoticeReorder:
		alert, err = reorder(tx, wh, gw, n)
	}
	if err != nil {
		return nil, nil, err
	}
	rec.Taken = true
	if err := putCBOR(tx, key(pNotice, wh, gw, n.ID), rec); err != nil {
		return nil, nil, err
	}
	return short, alert, tx.AppendDown(wh, gw, protocol.DownNoticeAck, "notice/"+gw+"/"+n.ID, protocol.NoticeAck{ID: n.ID})
}

// ReceiptShortID is the ID of the receipt-discrepancy conflict of a PO
// line received short at close.
func ReceiptShortID(wh, po string, line uint32) string {
	return fmt.Sprintf("rcpt-short:%s/%s/%d", wh, url.PathEscape(po), line)
}

// ClosePO closes a purchase order on behalf of by (an API caller) and
// raises a receipt discrepancy for every line received short.
func (s *Service) ClosePO(_ context.Context, wh, id, by string) (PO, []conflicts.Conflict, error) {
	var p PO
	var cs []conflicts.Conflict
	err := s.b.Update(func(tx store.Tx) error {
		var err error
		p, cs, err = closePOFull(tx, wh, id, by, s.opt.Now().UnixMilli())
		return err
	})
	return p, cs, err
}

func closePO(tx store.Tx, wh, id, by string, at int64) ([]conflicts.Conflict, error) {
	_, cs, err := closePOFull(tx, wh, id, by, at)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // a PO the server does not know: nothing to close
	}
	return cs, err
}

func closePOFull(tx store.Tx, wh, id, by string, at int64) (PO, []conflicts.Conflict, error) {
	var rec poRecord
	ok, err := getCBOR(tx, key(pPO, wh, id), &rec)
	if err != nil {
		return PO{}, nil, err
	}
	if !ok {
		return PO{}, nil, fmt.Errorf("po %s: %w", id, ErrNotFound)
	}
	if rec.PO.Status == "closed" || rec.PO.Status == "cancelled" {
		p, err := withReceipts(tx, wh, rec)
		return p, nil, err
	}
	rec.PO.Status, rec.ClosedBy, rec.ClosedAt = "closed", by, at
	p, err := withReceipts(tx, wh, rec)
	if err != nil {
		return p, nil, err
	}
	var out []conflicts.Conflict
	for _, l := range rec.PO.Lines {
		got := p.Received[l.Line]
		if got >= l.Qty {
			continue
		}
		c := conflicts.Conflict{
			ID: ReceiptShortID(wh, id, l.Line), Kind: conflicts.KindReceiptDiscrepancy, Status: conflicts.StatusOpen, Holds: true,
			Warehouse: wh, Location: rec.PO.Dock, SKU: l.SKU, Lot: l.Lot, Expected: l.Qty, Observed: got,
			CreatedHLC:      protocol.MakeHLC(at, 0),
			Detail:          fmt.Sprintf("PO %s line %d closed short: received %d of %d × %s (closed by %s)", id, l.Line, got, l.Qty, l.SKU, by),
			SuggestedAction: "review with supplier",
		}
		if c.Ops == nil {
			c.Ops = []conflicts.OpRef{}
		}
		got2, written, err := tx.RaiseConflict(c)
		if err != nil {
			return p, nil, err
		}
		if written {
			out = append(out, got2)
		}
	}
	return p, out, writePO(tx, wh, rec)
}

// closeTask marks a task done, or short when a pick task was closed with
// less than its quantity picked, and sends it back to its gateway.
func closeTask(tx store.Tx, wh string, n protocol.Notice, now int64) (*protocol.Task, error) {
	t, ok, err := tx.Task(wh, n.Ref)
	if err != nil || !ok {
		return nil, err
	}
	if t.Status != "" && t.Status != "open" {
		return nil, nil
	}
	t.Status = "done"
	var short *protocol.Task
	if t.Kind == "pick" {
		t.Picked = n.Qty
		if n.Qty < t.Qty {
			t.Status = "short"
			short = &t
			if err := recordShort(tx, wh, t, now); err != nil {
				return nil, err
			}
		}
	}
	target, err := gatewayOf(tx, wh, t.Location)
	if err != nil {
		return nil, err
	}
	if err := tx.PutTask(wh, target, t); err != nil {
		return nil, err
	}
	return short, SendToPackStations(tx, wh, target, t)
}

// reorder records a gateway's reorder alert, once per open crossing: a
// second gateway's notice for a sku whose alert is open only adds itself.
// An alert re-arms when the server's on-hand of the sku is back above the
// reorder point. It returns the alert when it opened one (nil when the
// notice only joined an open alert).
func reorder(tx store.Tx, wh, gw string, n protocol.Notice) (*ReorderAlert, error) {
	var a ReorderAlert
	had, err := getCBOR(tx, key(pAlert, wh, n.SKU), &a)
	if err != nil {
		return nil, err
	}
	by := gw + "/" + n.ID
	if had && a.Status == "open" {
		onHand, err := skuOnHand(tx, wh, n.SKU)
		if err != nil {
			return nil, err
		}
		if onHand <= a.ReorderPoint {
			a.RaisedBy = append(a.RaisedBy, by)
			return nil, putCBOR(tx, key(pAlert, wh, n.SKU), a)
		}
	}
	var th protocol.Threshold
	if _, err := getCBOR(tx, key(pThresh, wh, n.SKU), &th); err != nil {
		return nil, err
	}
	onHand, err := skuOnHand(tx, wh, n.SKU)
	if err != nil {
		return nil, err
	}
	ordered, err := onOrder(tx, wh, n.SKU)
	if err != nil {
		return nil, err
	}
	// The one suggestion formula, on the server's on-hand of the whole
	// warehouse and the threshold in effect the day of the crossing.
	eff := th.On(time.UnixMilli(n.At).UTC().Format(time.DateOnly))
	a = ReorderAlert{SKU: n.SKU, OnHand: n.Qty, ReorderPoint: n.Threshold, RaisedBy: []string{by}, AtMS: n.At, Status: "open",
		SuggestedQty: eff.SuggestedOrder(onHand, ordered)}
	if err := putCBOR(tx, key(pAlert, wh, n.SKU), a); err != nil {
		return nil, err
	}
	return &a, nil
}

func skuOnHand(tx store.Tx, wh, sku string) (int64, error) {
	rows, err := tx.Stock(wh, sku)
	var sum int64
	for _, r := range rows {
		sum += r.OnHand
	}
	return sum, err
}

// ReorderAlerts lists the reorder alerts gateways raised, by sku.
func (s *Service) ReorderAlerts(_ context.Context, wh string) ([]ReorderAlert, error) {
	var out []ReorderAlert
	err := s.b.View(func(tx store.Tx) error {
		var err error
		out, err = listCBOR[ReorderAlert](tx, pAlert, wh)
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return out, err
}

// Notices lists the notices of wh's gateways the server holds.
func (s *Service) Notices(_ context.Context, wh string) ([]protocol.Notice, map[string]bool, error) {
	var out []protocol.Notice
	taken := map[string]bool{}
	err := s.b.View(func(tx store.Tx) error {
		out, taken = nil, map[string]bool{}
		return tx.Scan(key(pNotice, wh, ""), store.ScanOptions{}, func(_, b []byte) error {
			var r noticeRecord
			if err := protocol.Unmarshal(b, &r); err != nil {
				return err
			}
			out = append(out, r.Notice)
			taken[r.Notice.ID] = r.Taken
			return nil
		})
	})
	return out, taken, err
}

// ship takes a ship notice: once the gateway's ops up to its seq are
// applied (the picks it packed), Options.OnShip ships the order, and only
// then is the notice marked taken and acknowledged, so a crash in between
// makes the gateway repeat it and OnShip run again — which finds the
// order shipped and changes nothing. It reports whether it took the
// notice (the downstream log grew).
func (s *Service) ship(ctx context.Context, wh, gw string, n protocol.Notice) (bool, error) {
	s.shipMu.Lock()
	defer s.shipMu.Unlock()
	k := key(pNotice, wh, gw, n.ID)
	ready := false
	err := s.b.Update(func(tx store.Tx) error {
		ready = false
		var rec noticeRecord
		ok, err := getCBOR(tx, k, &rec)
		if err != nil || (ok && rec.Taken) {
			return err
		}
		wm, err := tx.Watermark(wh, gw)
		if err != nil {
			return err
		}
		ready = wm >= n.Seq
		if ok && rec.Notice == n {
			return nil
		}
		rec.Notice = n
		return putCBOR(tx, k, rec)
	})
	if err != nil || !ready || s.opt.OnShip == nil {
		return false, err
	}
	result, err := s.opt.OnShip(ctx, wh, gw, n)
	if err != nil {
		return false, fmt.Errorf("ship order %s: %w", n.Ref, err)
	}
	took := false
	err = s.b.Update(func(tx store.Tx) error {
		took = false
		var rec noticeRecord
		ok, err := getCBOR(tx, k, &rec)
		if err != nil || (ok && rec.Taken) {
			return err
		}
		rec = noticeRecord{Notice: n, Taken: true, Result: result}
		if err := putCBOR(tx, k, rec); err != nil {
			return err
		}
		took = true
		return tx.AppendDown(wh, gw, protocol.DownNoticeAck, "notice/"+gw+"/"+n.ID, protocol.NoticeAck{ID: n.ID})
	})
	if took {
		s.opt.Logger.Info("ship notice taken", "warehouse", wh, "gateway", gw, "order", n.Ref, "sscc", n.SSCC, "result", result)
	}
	return took, err
}
