package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/downstream"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/routing"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// mdWiring connects the master data to the rest of the server: gateway
// notices (from status messages, and deferred ones once their ops are
// applied), the inventory's view of locations and thresholds, and local
// reorder alerts, which it publishes for the server's alerts to judge.
type mdWiring struct {
	md   *masterdata.Service
	rt   *routing.Service
	st   store.Store
	log  *slog.Logger
	down *downstream.Sender
	// ship ships the order of a gateway's ship notice (set once the order
	// model exists: inventory.shipScanned).
	ship func(ctx context.Context, wh, gw string, n protocol.Notice) (string, error)
	// onShort acts on a pick task closed short (floor.go); set before
	// the ingest starts.
	onShort func(ctx context.Context, wh string, t protocol.Task)
}

func newMDWiring(st store.Store, bus events.Publisher, down *downstream.Sender, maxOffset time.Duration, log *slog.Logger) *mdWiring {
	w := &mdWiring{st: st, log: log, down: down}
	w.md, w.rt = routing.Setup(st, masterdata.Options{Logger: log, OnReorder: func(wh string, a masterdata.ReorderAlert) {
		bus.Publish(events.Event{Reorders: []events.Reorder{{Warehouse: wh, SKU: a.SKU}}})
	}, OnShip: func(ctx context.Context, wh, gw string, n protocol.Notice) (string, error) {
		if w.ship == nil {
			return "", errors.New("the order model is not started yet")
		}
		return w.ship(ctx, wh, gw, n)
	}, OnTaskShort: func(ctx context.Context, wh string, t protocol.Task) {
		if w.onShort != nil {
			w.onShort(ctx, wh, t)
		}
	}})
	st.SetOpCheck(stampCheck(maxOffset, time.Now, masterdata.CheckOp)) // ops stamped ahead; strict catalog and unknown locations quarantine
	return w
}

// hooks is what the inventory reads from the master data.
func (w *mdWiring) hooks() masterData {
	return masterData{
		Sellable: w.md.Sellable,
		Owner: func(wh, sku string) (string, error) {
			it, _, err := w.md.Item(context.Background(), wh, sku)
			return it.Owner, err
		},
		HasOwners: w.md.HasOwners,
		Thresholds: alerts.ThresholdsFunc(func(wh, sku string) (alerts.Threshold, bool) {
			t, ok := w.md.Threshold(wh, sku)
			out := alerts.Threshold{ReorderPoint: t.ReorderPoint, ReorderQty: t.ReorderQty, Max: t.Max, SafetyStock: t.SafetyStock}
			for _, s := range t.Seasonal {
				out.Seasonal = append(out.Seasonal, alerts.Seasonal{From: s.From, To: s.To, ReorderPoint: s.ReorderPoint, ReorderQty: s.ReorderQty, Max: s.Max})
			}
			return out, ok
		}),
		OnOrder: w.md.OnOrder,
		NearDays: func(wh string) int {
			st, err := w.md.Settings(context.Background(), wh)
			if err != nil {
				return protocol.DefaultNearExpiryDays
			}
			return st.NearExpiry()
		},
	}
}

func (w *mdWiring) status(m *protocol.Status) {
	if len(m.Notices) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	grew, err := w.md.HandleNotices(ctx, m.WH, m.GW, m.Notices)
	if err != nil {
		w.log.Warn("gateway notices not taken; the gateway repeats them", "warehouse", m.WH, "gateway", m.GW, "err", err)
	}
	if grew {
		w.down.Changed(m.WH)
	}
}

// follow is the master data's bus subscriber: a gateway's notices wait
// until its watermark covers their ops.
func (w *mdWiring) follow(ctx context.Context, ev events.Event) {
	if ev.Remote {
		return // the replica that applied takes them
	}
	for _, b := range ev.Batches {
		if b.Gateway != protocol.ServerOrigin {
			w.applied(ctx, b.Warehouse, b.Gateway, b.WM)
		}
	}
}

// resync looks at every gateway's waiting notices.
func (w *mdWiring) resync(ctx context.Context) {
	gs, err := w.st.Gateways(ctx, "")
	if err != nil {
		w.log.Warn("gateways not listed; waiting notices are taken with their gateway's next batch", "err", err)
		return
	}
	for _, g := range gs {
		w.applied(ctx, g.Warehouse, g.Gateway, g.WM)
	}
}

func (w *mdWiring) applied(ctx context.Context, wh, gw string, wm uint64) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	grew, err := w.md.Applied(ctx, wh, gw, wm)
	if err != nil {
		w.log.Warn("gateway notices not taken; the gateway repeats them", "warehouse", wh, "gateway", gw, "err", err)
	}
	if grew {
		w.down.Changed(wh)
	}
}

// stampCheck quarantines an op stamped more than maxOffset ahead of the
// server's clock (one a gateway stamped while its clock ran ahead, sent
// after the clock was set right: the batch's own clock passed), then runs
// next (may be nil). Re-applying it from quarantine succeeds once its time
// has come, or it is rejected.
func stampCheck(maxOffset time.Duration, now func() time.Time, next func(store.Tx, string, *protocol.Op) error) func(store.Tx, string, *protocol.Op) error {
	return func(tx store.Tx, wh string, op *protocol.Op) error {
		if err := protocol.CheckAhead(op.HLC, now(), maxOffset); err != nil {
			return fmt.Errorf("op %d was stamped ahead of the server's clock: %w", op.Seq, err)
		}
		if next == nil {
			return nil
		}
		return next(tx, wh, op)
	}
}
