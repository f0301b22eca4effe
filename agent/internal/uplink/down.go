package uplink

import (
	"log/slog"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

// decodeDown decodes the items of a downstream batch after seq `after`.
// An item that does not decode is logged and skipped; kinds this build
// does not know are ignored (SPEC.md §3).
func decodeDown(items []protocol.DownItem, after uint64, log *slog.Logger) store.Down {
	var d store.Down
	for _, it := range items {
		if it.Seq <= after {
			continue
		}
		var err error
		switch it.Kind {
		case protocol.DownStock:
			var v protocol.StockValue
			if err = protocol.Unmarshal(it.Body, &v); err == nil {
				d.Stock = append(d.Stock, v)
			}
		case protocol.DownTask:
			var t protocol.Task
			if err = protocol.Unmarshal(it.Body, &t); err == nil {
				d.Tasks = append(d.Tasks, t)
			}
		case protocol.DownCatalog:
			var v protocol.Item
			if err = protocol.Unmarshal(it.Body, &v); err == nil {
				d.Items = append(d.Items, v)
			}
		case protocol.DownLocation:
			var v protocol.Location
			if err = protocol.Unmarshal(it.Body, &v); err == nil {
				d.Locations = append(d.Locations, v)
			}
		case protocol.DownThreshold:
			var v protocol.Threshold
			if err = protocol.Unmarshal(it.Body, &v); err == nil {
				d.Thresholds = append(d.Thresholds, v)
			}
		case protocol.DownPO:
			var v protocol.PurchaseOrder
			if err = protocol.Unmarshal(it.Body, &v); err == nil {
				d.POs = append(d.POs, v)
			}
		case protocol.DownASN:
			var v protocol.ASN
			if err = protocol.Unmarshal(it.Body, &v); err == nil {
				d.ASNs = append(d.ASNs, v)
			}
		case protocol.DownSettings:
			var v protocol.Settings
			if err = protocol.Unmarshal(it.Body, &v); err == nil {
				d.Settings = &v
			}
		case protocol.DownNoticeAck:
			var v protocol.NoticeAck
			if err = protocol.Unmarshal(it.Body, &v); err == nil {
				d.NoticeAcks = append(d.NoticeAcks, v.ID)
			}
		}
		if err != nil {
			log.Warn("bad downstream item ignored", "seq", it.Seq, "kind", it.Kind, "err", err)
		}
	}
	return d
}
