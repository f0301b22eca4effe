package app

import (
	"context"
	"fmt"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// Both stores record lost-ops (their apply core).
var (
	_ store.LostOpsRecorder = (*badger.Store)(nil)
	_ store.LostOpsRecorder = (*postgres.Store)(nil)
)

// lostOps issues a count task for every location of the zones gateway gw
// serves, after its seqs from..to were recorded as lost-ops: the stock
// there no longer reflects everything that happened (protocol SPEC.md
// §6.1). A gateway that serves no zone gets none; the conflict and its
// alert say what to count.
func (w *mdWiring) lostOps(wh, gw string, from, to uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	locs, err := zoneLocations(ctx, w.md, wh, gw)
	if err != nil {
		w.log.Error("lost-ops: read the gateway's zones; issue count tasks by hand", "warehouse", wh, "gateway", gw, "err", err)
		return
	}
	if len(locs) == 0 {
		w.log.Warn("lost-ops: the gateway serves no zone, so no count tasks were issued; count the locations it works at", "warehouse", wh, "gateway", gw, "lost_from", from, "lost_to", to)
		return
	}
	reason := fmt.Sprintf("lost-ops: ops %d..%d of %s were lost with the server's state", from, to, gw)
	for _, l := range locs {
		if _, err := w.rt.CountTask(ctx, wh, l, reason); err != nil {
			w.log.Error("lost-ops: count task not issued", "warehouse", wh, "gateway", gw, "location", l, "err", err)
		}
	}
	w.log.Info("lost-ops: count tasks issued for the gateway's zone", "warehouse", wh, "gateway", gw, "locations", len(locs))
}

// zoneLocations lists the locations of the zones gw serves in wh.
func zoneLocations(ctx context.Context, md *masterdata.Service, wh, gw string) ([]string, error) {
	zs, err := md.List(ctx, wh, masterdata.Zones)
	if err != nil {
		return nil, err
	}
	served := map[string]bool{}
	for _, z := range zs.([]masterdata.Zone) {
		if z.Gateway == gw {
			served[z.Zone] = true
		}
	}
	if len(served) == 0 {
		return nil, nil
	}
	ls, err := md.List(ctx, wh, masterdata.Locations)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range ls.([]protocol.Location) {
		if served[l.Zone] {
			out = append(out, l.Code)
		}
	}
	return out, nil
}
