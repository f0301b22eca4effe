package masterdata

import (
	"sort"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Pack stations (docs/DESIGN.md, "Pack and ship by scan"): a pack session
// checks an order against the order's pick tasks its gateway holds. A
// pick task goes to the gateway serving its location's zone; once closed
// (done, short or cancelled, with what was picked) it also goes to every
// gateway serving a zone with a pack location (type "pack"), so a pack
// station knows what was picked for an order in every zone. Open tasks
// are never sent there: a pack station does not pick them.

// PackGateways returns the gateways serving the zones of wh's pack
// locations, sorted.
func PackGateways(tx store.Tx, wh string) ([]string, error) {
	locs, err := listCBOR[protocol.Location](tx, pLoc, wh)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, l := range locs {
		if l.Type != protocol.LocPack || l.Deleted || l.Zone == "" {
			continue
		}
		gw, err := gatewayOf(tx, wh, l.Code)
		if err != nil {
			return nil, err
		}
		if gw != "" && !seen[gw] {
			seen[gw] = true
			out = append(out, gw)
		}
	}
	sort.Strings(out)
	return out, nil
}

// SendToPackStations sends a closed pick task of an order to the pack
// gateways of wh other than target (the gateway it was sent to; "" is
// every gateway already). An open task, or one of no order, is not sent.
func SendToPackStations(tx store.Tx, wh, target string, t protocol.Task) error {
	if t.Kind != "pick" || t.Order == "" || t.Status == "" || t.Status == "open" || target == "" {
		return nil
	}
	gws, err := PackGateways(tx, wh)
	if err != nil {
		return err
	}
	for _, gw := range gws {
		if gw == target {
			continue
		}
		// Its own item key: the log compacts per key across targets, and
		// the zone gateway's copy ("task/{id}") must stay.
		if err := tx.AppendDown(wh, gw, protocol.DownTask, "packtask/"+gw+"/"+t.ID, t); err != nil {
			return err
		}
	}
	return nil
}
