package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/orders"
)

// Ship notices of pack sessions (docs/DESIGN.md, "Pack and ship by scan").

// Results of a ship notice, recorded with it and counted.
const (
	shipShipped = "shipped" // the order is shipped (by this notice, or already)
	shipRefused = "refused" // cancelled, unknown or backordered: a ship-refused alert
)

// newShipMetric counts ship notices by result.
func newShipMetric(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shelfsync_server_ship_notices_total",
		Help: "Ship notices of gateways' pack sessions taken, by result (shipped, refused).",
	}, []string{"result"})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// shipScanned ships the order a pack session checked, as the ship API
// does (same webhook), recording the outbound label and where it was
// packed. An order the server cannot ship — cancelled meanwhile (the
// cancel stands: the channel has told its buyer), unknown, or
// backordered — stays as it is and raises a ship-refused alert, so a
// person stops the parcel; the notice is then taken all the same. It runs
// again if the server stops before the notice is marked taken: a shipped
// order is a replay, and a refusal raises its alert at most once — the
// alert is raised for a cause naming the notice (shipRefusedCause),
// recorded in the alert's transaction, so a replay after a crash, or the
// same notice taken by two replicas, finds the cause and raises nothing.
func (inv *inventory) shipScanned(ctx context.Context, wh, gw string, n protocol.Notice) (string, error) {
	by := gw + "/" + n.Device
	if n.Operator != "" {
		by += " (operator " + n.Operator + ")"
	}
	o, err := inv.orders.ShipScanned(ctx, wh, n.Ref, n.SSCC, by)
	switch {
	case err == nil:
		inv.shipped.WithLabelValues(shipShipped).Inc()
		return shipShipped, nil
	case errors.Is(err, orders.ErrNotFound), errors.Is(err, orders.ErrConflict):
	default:
		return "", err
	}
	why := "is not known to the server"
	if o.Status != "" {
		why = "is " + string(o.Status)
	}
	label := ""
	if n.SSCC != "" {
		label = ", outbound label " + n.SSCC
	}
	_, raised, err := inv.alerts.RaiseFor(shipRefusedCause(wh, gw, n), alerts.Alert{Kind: alerts.KindShipRefused, Warehouse: wh, Gateway: gw,
		Message: fmt.Sprintf("order %s was packed and shipped by scan at %s%s, but it %s: it was not shipped — stop the parcel and put its units back", n.Ref, by, label, why)})
	if err != nil {
		return "", err
	}
	inv.log.Warn("ship scan refused", "warehouse", wh, "gateway", gw, "order", n.Ref, "status", o.Status, "sscc", n.SSCC, "alert_raised", raised)
	inv.shipped.WithLabelValues(shipRefused).Inc()
	return shipRefused + ": order " + why, nil
}

// shipRefusedCause is the alert cause of a refused ship notice: the
// warehouse, the order, the gateway and the notice's id (unique per
// gateway). Every parcel shipped by scan of a refused order gets its
// alert (two pack stations, or a pack after the server confirmed an
// earlier one, are two notices), and one notice never gets two. The cause
// is never cleared: a refused notice stays refused.
func shipRefusedCause(wh, gw string, n protocol.Notice) string {
	return "ship-refused/" + strings.Join([]string{wh, n.Ref, gw, n.ID}, "\x00")
}
