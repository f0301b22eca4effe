package postgres

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// BenchmarkIngestPostgres measures store-level ingest — ApplyBatch of
// receive batches from many gateways at once, each gateway's batches in
// order — on Badger and on PostgreSQL through 1 and 3 Stores (replicas, each
// with its own pool; gateways partitioned between them), in one run:
//
//	SHELFSYNC_TEST_PG=postgres://… go test -run XXX -bench IngestPostgres ./internal/store/postgres/
//
// It reports ops/s. Gateways, warehouses and batch size follow the env
// variables SHELFSYNC_BENCH_GATEWAYS (24), SHELFSYNC_BENCH_WAREHOUSES (4) and
// SHELFSYNC_BENCH_BATCH (64).
func BenchmarkIngestPostgres(b *testing.B) {
	gateways, warehouses, batch := envInt("SHELFSYNC_BENCH_GATEWAYS", 24), envInt("SHELFSYNC_BENCH_WAREHOUSES", 4), envInt("SHELFSYNC_BENCH_BATCH", 64)
	b.Run("badger", func(b *testing.B) {
		s, err := badger.Open(badger.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ingest(b, []store.Store{s}, gateways, warehouses, batch)
	})
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("postgres-replicas=%d", replicas), func(b *testing.B) {
			dsn := freshSchema(b)
			var ss []store.Store
			for range replicas {
				ss = append(ss, openTest(b, dsn))
			}
			ingest(b, ss, gateways, warehouses, batch)
		})
	}
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err == nil && v > 0 {
		return v
	}
	return def
}

// ingest applies b.N ops (rounded up to whole batches) from gateways
// concurrently, gateway i through stores[i % len(stores)].
func ingest(b *testing.B, stores []store.Store, gateways, warehouses, batch int) {
	perGW := (b.N + gateways - 1) / gateways
	batches := (perGW + batch - 1) / batch
	hlc := protocol.MakeHLC(time.Now().UnixMilli(), 0)
	mk := func(gw string, first uint64) *protocol.OpBatch {
		ops := make([]protocol.Op, batch)
		for i := range ops {
			seq := first + uint64(i)
			sku := fmt.Sprintf("0400638133%04d", seq%200)
			ops[i] = protocol.Op{Seq: seq, HLC: hlc + protocol.HLC(seq), Kind: protocol.OpReceive, Location: "DOCK-" + gw, SKU: sku, Qty: 1,
				Device: "d1", Operator: "op7", Raw: []string{sku[1:]}}
		}
		return &protocol.OpBatch{First: first, Last: first + uint64(batch) - 1, Ops: ops}
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, gateways)
	for g := range gateways {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wh, gw := fmt.Sprint("wh", g%warehouses), fmt.Sprintf("gw%03d", g)
			st := stores[g%len(stores)]
			for i := range batches {
				bt := mk(gw, uint64(i*batch+1))
				bt.WH, bt.GW = wh, gw
				for {
					res, err := st.ApplyBatch(context.Background(), wh, gw, bt)
					if err == store.ErrConflict {
						continue
					}
					if err == nil && res.Verdict != protocol.Apply {
						err = fmt.Errorf("%s/%s batch %d: verdict %s", wh, gw, i, res.Verdict)
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(gateways*batches*batch)/took.Seconds(), "ops/s")
}
