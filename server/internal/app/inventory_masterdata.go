package app

import (
	"context"
	"log/slog"
	"sync"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// mdCache reads what the inventory needs from the master data (sellable
// locations, reorder thresholds, open purchase orders), cached per
// warehouse and dropped whenever the warehouse's master data changes.
//
// A warehouse without location records sells from every location; once it
// has some, only the locations marked sellable count toward ATS.
type mdCache struct {
	md  *masterdata.Service
	log *slog.Logger

	mu   sync.Mutex
	locs map[string]map[string]bool            // wh → code → sellable
	ths  map[string]map[string]alerts.Threshold // wh → sku → threshold
}

func newMDCache(st store.Store, log *slog.Logger) *mdCache {
	md := masterdata.For(st, masterdata.Options{Logger: log})
	if md == nil {
		return nil
	}
	return &mdCache{md: md, log: log, locs: map[string]map[string]bool{}, ths: map[string]map[string]alerts.Threshold{}}
}

// hooks returns the master-data hooks of the inventory.
func (c *mdCache) hooks() masterData {
	if c == nil {
		return masterData{}
	}
	return masterData{Sellable: c.sellable, Thresholds: alerts.ThresholdsFunc(c.threshold), OnOrder: c.onOrder}
}

// invalidate drops what is cached of wh.
func (c *mdCache) invalidate(wh string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.locs, wh)
	delete(c.ths, wh)
	c.mu.Unlock()
}

func (c *mdCache) sellable(wh, loc string) bool {
	c.mu.Lock()
	m, ok := c.locs[wh]
	c.mu.Unlock()
	if !ok {
		v, err := c.md.List(context.Background(), wh, masterdata.Locations)
		if err != nil {
			c.log.Warn("read locations; counting every location as sellable", "warehouse", wh, "err", err)
			return true
		}
		ls, _ := v.([]protocol.Location)
		m = make(map[string]bool, len(ls))
		for _, l := range ls {
			if !l.Deleted {
				m[l.Code] = l.Sellable
			}
		}
		c.mu.Lock()
		c.locs[wh] = m
		c.mu.Unlock()
	}
	if len(m) == 0 {
		return true
	}
	return m[loc]
}

func (c *mdCache) threshold(wh, sku string) (alerts.Threshold, bool) {
	c.mu.Lock()
	m, ok := c.ths[wh]
	c.mu.Unlock()
	if !ok {
		v, err := c.md.List(context.Background(), wh, masterdata.Thresholds)
		if err != nil {
			c.log.Warn("read thresholds", "warehouse", wh, "err", err)
			return alerts.Threshold{}, false
		}
		ts, _ := v.([]protocol.Threshold)
		m = make(map[string]alerts.Threshold, len(ts))
		for _, t := range ts {
			if !t.Deleted {
				m[t.SKU] = alerts.Threshold{ReorderPoint: t.ReorderPoint, ReorderQty: t.ReorderQty, Max: t.Max}
			}
		}
		c.mu.Lock()
		c.ths[wh] = m
		c.mu.Unlock()
	}
	t, ok := m[sku]
	return t, ok
}

// onOrder sums what open purchase orders of wh still expect of sku.
func (c *mdCache) onOrder(wh, sku string) int64 {
	ctx := context.Background()
	v, err := c.md.List(ctx, wh, masterdata.POs)
	if err != nil {
		return 0
	}
	pos, _ := v.([]masterdata.PO)
	var total int64
	for _, p := range pos {
		if p.Deleted || (p.Status != "" && p.Status != "open") {
			continue
		}
		wants := false
		for _, l := range p.Lines {
			wants = wants || l.SKU == sku
		}
		if !wants {
			continue
		}
		g, err := c.md.Get(ctx, wh, masterdata.POs, p.ID)
		if err != nil {
			continue
		}
		full, _ := g.(masterdata.PO)
		for _, l := range full.Lines {
			if l.SKU == sku {
				total += max(l.Qty-full.Received[l.Line], 0)
			}
		}
	}
	return total
}
