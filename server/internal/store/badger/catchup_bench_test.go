package badger

import (
	"context"
	"fmt"
	"testing"

	"github.com/shelfsync/shelfsync/protocol"
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
