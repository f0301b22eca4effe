package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// issueOps runs IssueOps, again while the store reports store.ErrConflict.
func issueOps(a store.Actions, wh string, ops []protocol.Op, shape store.Shape) ([]store.Issued, store.Result, error) {
	for attempt := 0; ; attempt++ {
		out, res, err := a.IssueOps(context.Background(), wh, ops, shape)
		if errors.Is(err, store.ErrConflict) && attempt < 1000 {
			continue
		}
		return out, res, err
	}
}

// testIssueOpsConcurrent runs chunks of IssueOps through two handles
// while single server ops and a gateway's batches are applied to the same
// warehouse: each chunk's ops take consecutive server seqs (one
// transaction), every server seq is issued once, and the stock and the
// downstream ops are the sum of everything applied.
func testIssueOpsConcurrent(t *testing.T, s store.Store, a store.Actions, c config) {
	h, ok := c.replica(t, s).(store.Actions)
	require.True(t, ok, "the replica implements store.Actions too")
	handles := []store.Actions{a, h}
	const chunkers, chunks, chunkOps, singles, batches = 2, 5, 8, 10, 10
	var (
		mu     sync.Mutex
		errs   []error
		bySeq  = map[uint64]int{} // server seq → times issued
		chunkd [][]uint64
		wg     sync.WaitGroup
	)
	record := func(seqs []uint64, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
		for _, q := range seqs {
			bySeq[q]++
		}
	}
	for i := range chunkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range chunks {
				ops := make([]protocol.Op, chunkOps)
				for k := range ops {
					ops[k] = Receive(0, int64(10_000+1000*i+100*j+k), "L", fmt.Sprintf("c%d", i), 1)
				}
				out, res, err := issueOps(handles[i%len(handles)], "w", ops, nil)
				var seqs []uint64
				for _, o := range out {
					if o.Err != nil {
						err = errors.Join(err, o.Err)
					}
					seqs = append(seqs, o.Op.Seq)
				}
				if err == nil && res.Applied != chunkOps {
					err = fmt.Errorf("chunk applied %d of %d", res.Applied, chunkOps)
				}
				record(seqs, err)
				mu.Lock()
				chunkd = append(chunkd, seqs)
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := range singles {
			op, _, err := issueOp(handles[j%len(handles)], "w", Receive(0, int64(20_000+j), "L", "single", 1))
			record([]uint64{op.Seq}, err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := range batches {
			_, err := apply(s, Batch("w", "g2", Receive(uint64(j+1), int64(30_000+j), "L", "gw", 2)))
			record(nil, err)
		}
	}()
	wg.Wait()
	require.NoError(t, errors.Join(errs...))

	total := chunkers*chunks*chunkOps + singles
	for seq := uint64(1); seq <= uint64(total); seq++ {
		require.Equal(t, 1, bySeq[seq], "server seq %d issued once", seq)
	}
	require.Len(t, bySeq, total)
	require.Equal(t, uint64(total), serverWM(t, s, "w"))
	for _, seqs := range chunkd {
		for k := 1; k < len(seqs); k++ {
			require.Equal(t, seqs[k-1]+1, seqs[k], "a chunk's ops take consecutive seqs: %v", seqs)
		}
	}
	require.Equal(t, map[ledger.Key]int64{
		{WH: "w", Location: "L", SKU: "c0"}:     chunks * chunkOps,
		{WH: "w", Location: "L", SKU: "c1"}:     chunks * chunkOps,
		{WH: "w", Location: "L", SKU: "single"}: singles,
		{WH: "w", Location: "L", SKU: "gw"}:     2 * batches,
	}, stockOf(t, s, "w"))
	server := 0
	for _, op := range readDown(t, s, "w").ops {
		if op.GW == protocol.ServerOrigin {
			server++
		}
	}
	require.Equal(t, total, server, "every server op goes downstream once")
}

// testIssueOpsKnownByOwnerAndStatus: the shape hears whether the op's own
// key — with its owner and status — has records, not another key of the
// same location and sku.
func testIssueOpsKnownByOwnerAndStatus(t *testing.T, s store.Store, a store.Actions, _ config) {
	issue(t, a, "w", protocol.Op{HLC: protocol.MakeHLC(1000, 0), Kind: protocol.OpReceive, Location: "L", SKU: "s", Owner: "acme", Qty: 5})
	issue(t, a, "w", protocol.Op{HLC: protocol.MakeHLC(1001, 0), Kind: protocol.OpReceive, Location: "L", SKU: "s", Status: protocol.StatusHold, Qty: 2})
	op := func(ms int64, owner string, status protocol.StockStatus) protocol.Op {
		return protocol.Op{HLC: protocol.MakeHLC(ms, 0), Kind: protocol.OpCount, Scope: protocol.ScopeKey, Location: "L", SKU: "s", Owner: owner, Status: status, Qty: 9}
	}
	var known []bool
	_, res, err := issueOps(a, "w", []protocol.Op{
		op(2000, "acme", protocol.StatusAvailable), // known
		op(2001, "", protocol.StatusAvailable),     // not known: the owner's key is another
		op(2002, "", protocol.StatusHold),          // known
		op(2003, "acme", protocol.StatusHold),      // not known
	}, func(o *protocol.Op, k bool) bool { known = append(known, k); return k })
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true, false}, known)
	require.Equal(t, 2, res.Applied)
	require.Equal(t, map[ledger.Key]int64{
		{WH: "w", Location: "L", SKU: "s", Owner: "acme"}:               9,
		{WH: "w", Location: "L", SKU: "s", Status: protocol.StatusHold}: 9,
	}, stockOf(t, s, "w"))
}
