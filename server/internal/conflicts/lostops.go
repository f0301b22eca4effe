package conflicts

import "fmt"

// KindLostOps: a server whose state went back in time (a restore, a new
// store) lacks ops of a gateway that the gateway no longer holds (beyond
// its retention, protocol SPEC.md §6.1); they can never be applied.
const KindLostOps Kind = "lost-ops"

// LostOps returns the lost-ops conflict of gateway gw of wh: seqs
// from..to will never arrive. The server records it with Raise when it
// moves the gateway's watermark past them, and issues count tasks for the
// gateway's zone.
func LostOps(wh, gw string, from, to uint64) Conflict {
	return Conflict{
		ID: fmt.Sprintf("lost:%s/%s/%d-%d", wh, esc(gw), from, to), Kind: KindLostOps, Status: StatusOpen, Holds: true,
		Warehouse: wh, Ops: []OpRef{{WH: wh, GW: gw, Seq: from}, {WH: wh, GW: gw, Seq: to}},
		Detail: fmt.Sprintf("ops %d..%d of gateway %s (%d ops) were lost with the server's state and are beyond the gateway's retention: they will never be applied",
			from, to, gw, to-from+1),
		SuggestedAction: "count the locations of the gateway's zone (count tasks were issued), then resolve",
	}
}
