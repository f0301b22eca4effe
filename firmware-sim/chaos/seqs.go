package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/shelfsync/shelfsync/testbed"
)

// heldOps is the part of the agent's GET /api/v1/ops the harness reads.
type heldOps struct {
	FirstHeld uint64 `json:"first_held"`
	LastSeq   uint64 `json:"last_seq"`
	Items     []struct {
		Seq    uint64 `json:"seq"`
		Device string `json:"device"`
		SKU    string `json:"sku"`
		Qty    int64  `json:"qty"`
	} `json:"items"`
}

// placeConfirmed gives each op of a scan the operator just heard
// confirmed its (gateway, seq), as the agent committed it: the agent
// commits before it beeps and this device sends nothing until the
// operator's next scan, so the device's newest ops are this scan's. It
// reads them from the agent's held ops (GET /api/v1/ops, which survive a
// kill -9 between the beep and this call) above the device's last placed
// seq. The source side of a move shares the seq of the op it mirrors.
func (o *operator) placeConfirmed(ctx context.Context, ops []opRec) error {
	n := 0
	for _, r := range ops {
		if !r.mirror {
			n++
		}
	}
	var mine []uint64
	var skus []string
	err := testbed.WaitFor(ctx, 2*time.Minute, o.a.gw+" held ops", func() bool {
		mine, skus = mine[:0], skus[:0]
		for from := o.lastSeq + 1; ; {
			var h heldOps
			if err := testbed.GetJSON(ctx, fmt.Sprintf("http://%s/api/v1/ops?from=%d", o.a.httpAddr, from), &h); err != nil {
				return false // the agent is down (a kill fault): it comes back
			}
			if h.FirstHeld > from {
				mine = nil // pruned: reported below
				return true
			}
			for _, it := range h.Items {
				if it.Device == o.dev {
					mine, skus = append(mine, it.Seq), append(skus, it.SKU)
				}
			}
			if len(h.Items) == 0 || h.Items[len(h.Items)-1].Seq >= h.LastSeq {
				return true
			}
			from = h.Items[len(h.Items)-1].Seq + 1
		}
	})
	if err != nil {
		return err
	}
	if len(mine) < n {
		return fmt.Errorf("the agent holds %d ops of the device above seq %d, but the beep confirmed %d (an op confirmed and then gone from the gateway, or pruned)", len(mine), o.lastSeq, n)
	}
	mine, skus = mine[len(mine)-n:], skus[len(skus)-n:]
	j := 0
	for i := range ops {
		if skus[j] != "" && ops[i].key.SKU != skus[j] { // a count's lines carry its sku
			return fmt.Errorf("the device's newest op (seq %d) is of sku %q, the scan's of %q", mine[j], skus[j], ops[i].key.SKU)
		}
		ops[i].seq = mine[j]
		if !ops[i].mirror {
			j++
		}
	}
	o.lastSeq = mine[n-1]
	return nil
}
