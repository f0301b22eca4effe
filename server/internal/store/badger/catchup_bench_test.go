package badger

import (
	"context"
	"fmt"
	"testing"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// BenchmarkApplyCatchUp applies one gateway's backlog of receives over
// 1,000 skus at 20 docks in 256-op batches: the shape of a catch-up.
func BenchmarkApplyCatchUp(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 256
	seq := uint64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt := &protocol.OpBatch{First: seq + 1}
		for j := 0; j < batch; j++ {
			seq++
			bt.Ops = append(bt.Ops, protocol.Op{Seq: seq, HLC: protocol.MakeHLC(int64(seq), 0), Kind: protocol.OpReceive,
				Location: fmt.Sprintf("DOCK-%02d", seq%20), SKU: fmt.Sprintf("0400638133%04d", seq%1000), Qty: 1, Device: "d1", Raw: []string{"x"}})
		}
		bt.Last = seq
		if _, err := s.ApplyBatch(context.Background(), "wh1", "gw1", bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkApplyGroup applies, per iteration, one 256-op batch from each of
// 16 gateways of 4 warehouses in one ApplyBatches call (group commit), in
// the shape of the ingest benchmark: receives over 100 skus at each
// gateway's dock.
func BenchmarkApplyGroup(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch, gws = 256, 16
	seq := uint64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var group []store.Batch
		first := seq + 1
		for g := 0; g < gws; g++ {
			bt := &protocol.OpBatch{First: first, Last: first + batch - 1}
			for j := uint64(0); j < batch; j++ {
				s := first + j
				bt.Ops = append(bt.Ops, protocol.Op{Seq: s, HLC: protocol.MakeHLC(1_765_000_000_000+int64(s), 0), Kind: protocol.OpReceive,
					Location: fmt.Sprintf("DOCK-%02d", g), SKU: fmt.Sprintf("0400638133%04d", s%100), Qty: 1, Device: "d1", Raw: []string{"x"}})
			}
			group = append(group, store.Batch{WH: fmt.Sprintf("wh%d", g%4), GW: fmt.Sprintf("gw%02d", g), B: bt})
		}
		seq += batch
		rs, err := s.ApplyBatches(context.Background(), group)
		if err != nil {
			b.Fatal(err)
		}
		if rs[0].Applied != batch {
			b.Fatalf("applied %d", rs[0].Applied)
		}
	}
	b.ReportMetric(float64(b.N*batch*gws)/b.Elapsed().Seconds(), "ops/s")
}
