package app

import (
	"encoding/json"
	"sort"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/webhooks"
)

// ownedSKUs returns sku → the owners of its items over the warehouses
// the order model knows (docs/DESIGN.md, "Owners": an owner's
// availability is that of its items' skus).
func (inv *inventory) ownedSKUs() (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	if inv.skuOwner == nil {
		return out, nil
	}
	rows, _, _ := inv.orders.Availability("", "")
	owned := map[string]bool{} // warehouse → its items have owners
	for _, a := range rows {
		has, seen := owned[a.Warehouse]
		if !seen {
			has = true
			if inv.hasOwners != nil {
				var err error
				if has, err = inv.hasOwners(a.Warehouse); err != nil {
					return nil, err
				}
			}
			owned[a.Warehouse] = has
		}
		if !has {
			continue
		}
		o, err := inv.skuOwner(a.Warehouse, a.SKU)
		if err != nil {
			return nil, err
		}
		if o == "" {
			continue
		}
		if out[a.SKU] == nil {
			out[a.SKU] = map[string]bool{}
		}
		out[a.SKU][o] = true
	}
	return out, nil
}

// publishOwners publishes a channel's availability once per owner, limited
// to the owner's skus: retained on {root}/owners/{owner}/channels/{channel}/availability
// and queued for the webhook endpoints bound to the owner. An owner that
// had skus in the channel's last snapshot and has none now gets an empty
// one, so its retained topic never keeps a stale offer.
func (inv *inventory) publishOwners(sn orders.Snapshot) {
	owned, err := inv.ownedSKUs()
	if err != nil {
		inv.log.Error("owners' availability not published; the next change publishes it", "channel", sn.Channel, "err", err)
		return
	}
	now := map[string]bool{}
	for _, it := range sn.Items {
		for o := range owned[it.SKU] {
			now[o] = true
		}
	}
	inv.ownerMu.Lock()
	last := inv.ownerTopics[sn.Channel]
	inv.ownerTopics[sn.Channel] = now
	inv.ownerMu.Unlock()
	all := make([]string, 0, len(now)+len(last))
	for o := range now {
		all = append(all, o)
	}
	for o := range last {
		if !now[o] {
			all = append(all, o)
		}
	}
	sort.Strings(all)
	for _, o := range all {
		osn := sn.ForOwner(o, func(sku string) bool { return owned[sku][o] })
		body, err := json.Marshal(osn)
		if err != nil {
			inv.log.Error("encode availability", "channel", sn.Channel, "owner", o, "err", err)
			continue
		}
		if protocol.ValidateID(o) == nil {
			inv.out.retain(inv.topics.OwnerAvailability(o, sn.Channel), body)
		} else {
			inv.log.Warn("owner's availability topic not published: the owner id is not a topic id ([A-Za-z0-9._-], 1-64); its webhooks still get it", "owner", o, "channel", sn.Channel)
		}
		if err := inv.hooks.Enqueue(webhooks.Event{Type: webhooks.EventAvailability, Channel: sn.Channel, Owner: o, OwnerOnly: true,
			Key: "availability/" + sn.Channel, Body: body}); err != nil {
			inv.log.Error("owner's availability webhook not queued", "channel", sn.Channel, "owner", o, "err", err)
		}
	}
}
