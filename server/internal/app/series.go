package app

import (
	"context"
	"time"
)

// backlogEvery is how often each gateway's backlog is sampled into the
// dashboard's per-minute series (several samples a minute; a minute keeps
// the largest).
const backlogEvery = 15 * time.Second

// sampleBacklog records every gateway's backlog into the series until ctx
// ends: the ops it reported holding that the server has not applied, or
// its outbox depth when that is larger (the gateways table's figure).
func (inv *inventory) sampleBacklog(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		gs, err := inv.st.Gateways(ctx, "")
		if err != nil && ctx.Err() == nil {
			inv.log.Debug("backlog sample skipped: gateways unreadable", "err", err)
		}
		for _, g := range gs {
			var lag uint64
			if g.ReportedSeq > g.WM {
				lag = g.ReportedSeq - g.WM
			}
			inv.series.Backlog(g.Warehouse, g.Gateway, int64(max(lag, g.OutboxDepth)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
