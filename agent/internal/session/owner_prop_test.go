package session

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestOwnerResolutionProperty: over random scan sequences in the owners
// world, every op committed names the sku of the owner it says, at an
// owned location that location's owner, elsewhere the owner of the
// session's last OWNER: scan, and nothing is committed while a scan waits
// for its owner but by the OWNER: scan that answers it.
func TestOwnerResolutionProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w := ownersWorld()
		w.stock[wkey{k: [3]string{"A-01", "ACME-MILK", ""}}] = 1000
		w.stock[wkey{k: [3]string{"B-01", "GLOBEX-MILK", ""}}] = 1000
		e := env
		e.Data = w
		scans := []Input{cmd("RECEIVE"), cmd("MOVE"), cmd("COUNT"), cmd("DONE"), cmd("CANCEL"), loc("RCV"), loc("A-01"), loc("B-01"), loc("C-01"),
			owner("acme"), owner("globex"), owner("initech"), gtin(shared), gtin(shared), qty(2)}
		ownerOf := map[string]string{"ACME-MILK": "acme", "GLOBEX-MILK": "globex"}
		var d Station
		for i, n := 0, rapid.IntRange(1, 40).Draw(rt, "n"); i < n; i++ {
			in := rapid.SampledFrom(scans).Draw(rt, "scan")
			before := d.Session
			out := Step(d, in, e)
			if before != nil && before.Pending != nil && len(out.Ops) > 0 {
				require.Equal(t, "owner", string(in.Kind), "only an OWNER: scan commits while a scan waits")
				for _, op := range out.Ops {
					require.Equal(t, in.Value, op.Owner)
				}
			}
			for _, op := range out.Ops {
				owners := []string{op.Owner}
				for _, l := range op.Lines {
					owners = append(owners, l.Owner)
					require.Equal(t, ownerOf[l.SKU], l.Owner, "count line %s", l.SKU)
				}
				if op.Kind != protocol.OpCount {
					require.Equal(t, ownerOf[op.SKU], op.Owner, "op %s of %s", op.Kind, op.SKU)
				}
				for _, where := range []string{op.Location, op.To} {
					if lo := locationOwner(where, e); lo != "" {
						for _, o := range owners {
							if o != "" {
								require.Equal(t, lo, o, "units of %s at %s", o, where)
							}
						}
					}
				}
				if lo := locationOwner(op.Location, e); lo == "" && op.Kind == protocol.OpReceive {
					require.Equal(t, out.Station.Session.Owner, op.Owner, "at an unowned location the OWNER: scan decides")
				}
			}
			if out.Changed {
				d = out.Station
				w.apply(out.Ops)
			}
		}
	})
}
