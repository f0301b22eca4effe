package masterdata

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// FuzzImport feeds arbitrary bytes to the CSV import of every kind: it
// never panics, and a successful import accounts for every row it read as
// imported or refused with a reason.
func FuzzImport(f *testing.F) {
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(f, err)
	f.Cleanup(func() { st.Close() })
	s := For(st, Options{})
	kinds := []Kind{Items, Locations, Zones, Thresholds, POs}
	f.Add(uint8(0), []byte("sku,gtins,name\nA,04012345678901,Apple\n"))
	f.Add(uint8(1), []byte("code,zone,type,sellable,rank\nA-1,Z1,storage,true,3\n"))
	f.Add(uint8(3), []byte("sku,reorder_point,reorder_qty,max\nA,5,10,20\n"))
	f.Add(uint8(3), []byte("sku,reorder_point,safety_stock,seasonal\nA,5,1,2026-12-01..2026-12-24=9/9/9;x..y=//\n"))
	f.Add(uint8(4), []byte("po,line,sku,qty\nP1,1,A,5\n"))
	f.Add(uint8(2), []byte("\"unterminated"))
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		kind := kinds[int(k)%len(kinds)]
		p, err := s.Import(context.Background(), "fz", kind, bytes.NewReader(data), nil)
		if err != nil {
			return
		}
		require.Equal(t, p.Rows, p.Imported+p.Errors, "kind %s: every row imported or refused", kind)
	})
}
