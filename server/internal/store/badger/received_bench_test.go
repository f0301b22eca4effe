package badger

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// BenchmarkApplyReceived applies, per iteration, one 256-op batch from
// each of 16 gateways in one ApplyBatches call, as BenchmarkApplyGroup
// does, with the batches as the ingest has them: decoded from the wire,
// under a master-data check (one that changes nothing, as for a warehouse
// without owners). "as-received" logs each op's received bytes;
// "encoded" is the same batches without them, so each op is encoded again
// for the log, as before the log kept ops as received.
func BenchmarkApplyReceived(b *testing.B) {
	for _, keep := range []bool{true, false} {
		name := map[bool]string{true: "as-received", false: "encoded"}[keep]
		b.Run(name, func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.SetOpCheck(func(store.Tx, string, *protocol.Op) error { return nil })
			const batch, gws = 256, 16
			seq := uint64(0)
			var cpu time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				var group []store.Batch
				first := seq + 1
				for g := 0; g < gws; g++ {
					bt := &protocol.OpBatch{Header: protocol.Header{WH: fmt.Sprintf("wh%d", g%4), GW: fmt.Sprintf("gw%02d", g)}, First: first, Last: first + batch - 1}
					for j := uint64(0); j < batch; j++ {
						s := first + j
						bt.Ops = append(bt.Ops, protocol.Op{Seq: s, HLC: protocol.MakeHLC(1_765_000_000_000+int64(s), 0), Kind: protocol.OpReceive,
							Location: fmt.Sprintf("DOCK-%02d", g), SKU: fmt.Sprintf("0400638133%04d", s%100), Qty: 1, Device: "d1", Raw: []string{"]C1010400638133" + fmt.Sprintf("%04d", s%100)}})
					}
					wire, err := protocol.Encode(bt)
					if err != nil {
						b.Fatal(err)
					}
					m, err := protocol.Decode(wire)
					if err != nil {
						b.Fatal(err)
					}
					got := m.(*protocol.OpBatch)
					if !keep {
						got.Received = nil
					}
					group = append(group, store.Batch{WH: bt.WH, GW: bt.GW, B: got})
				}
				seq += batch
				runtime.GC() // the framing's garbage is not the apply's
				b.StartTimer()
				before := processCPU(b)
				rs, err := s.ApplyBatches(context.Background(), group)
				if err != nil {
					b.Fatal(err)
				}
				cpu += processCPU(b) - before
				if rs[0].Applied != batch {
					b.Fatalf("applied %d", rs[0].Applied)
				}
			}
			b.ReportMetric(float64(b.N*batch*gws)/b.Elapsed().Seconds(), "ops/s")
			b.ReportMetric(cpu.Seconds()*1000/float64(b.N*batch*gws/1000), "cpu-ms/kop")
		})
	}
}

// processCPU is the CPU time (user and system) the process used so far:
// on a busy machine the time of the apply, not the wall clock, tells two
// ways of doing it apart.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
