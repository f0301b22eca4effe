package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/shelfsync/shelfsync/agent/internal/api"
	"github.com/shelfsync/shelfsync/agent/internal/devices"
	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/agent/internal/uplink"
	"github.com/shelfsync/shelfsync/protocol"
)

// smallOptions are the Badger options of the agent's store with
// --small-store (the default), for the raw baseline.
func smallOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).WithNumVersionsToKeep(1).
		WithMemTableSize(8 << 20).WithNumMemtables(2).WithNumLevelZeroTables(2).WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(0).WithIndexCacheSize(4 << 20).WithCompression(options.None).
		WithValueLogFileSize(32 << 20).WithValueThreshold(64 << 10).WithBaseTableSize(2 << 20).WithNumCompactors(2)
}

// benchDurable measures scans through the agent's device manager (decode,
// session step, group commit with fsync) from 1 and 32 devices, each
// against a raw Badger loop of one durable transaction per op with as many
// goroutines. It also takes the committed ops for the wire-size figure.
func benchDurable(ctx context.Context, d time.Duration, durable, wire bool) ([]Result, error) {
	var out []Result
	var sample []protocol.Op
	for _, devs := range []int{1, 32} {
		if !durable && devs > 1 {
			break
		}
		// Best of three runs of each: the machines are shared and a
		// neighbour's burst only ever makes a run slower.
		var agentRate, raw float64
		for try := 0; try < 3; try++ {
			r, ops, err := agentScans(ctx, devs, d)
			if err != nil {
				return nil, err
			}
			agentRate = max(agentRate, r)
			if sample == nil {
				sample = ops
			}
			b, err := rawTxnLoop(devs, d)
			if err != nil {
				return nil, err
			}
			raw = max(raw, b)
		}
		logf("durable ops/s with %d device(s): agent %.0f, raw Badger txn loop %.0f", devs, agentRate, raw)
		if durable {
			out = append(out, result(fmt.Sprintf("agent_durable_ops_per_s_%ddev", devs), agentRate, "ops/s",
				fmt.Sprintf("raw Badger durable txn loop, %d goroutine(s), 1 op per txn", devs), raw))
		}
	}
	if wire {
		r, err := wireBytes(sample)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// agentScans runs devs devices, each in an open RECEIVE session scanning
// items as fast as the commits return, for d.
func agentScans(ctx context.Context, devs int, d time.Duration) (float64, []protocol.Op, error) {
	dir, err := os.MkdirTemp("", "shelfsync-bench-agent-")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(store.Options{Dir: dir, Small: true})
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	m, err := devices.New(devices.Config{ReceivingLoc: "RECEIVING"}, st)
	if err != nil {
		return 0, nil, err
	}
	for i := 0; i < devs; i++ {
		name := fmt.Sprintf("d%02d", i)
		for _, s := range []string{"OP:bench", "CMD:RECEIVE", fmt.Sprintf("LOC:DOCK-%02d", i)} {
			if _, err := m.Scan(ctx, name, s); err != nil {
				return 0, nil, err
			}
		}
	}
	var ops atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < devs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("d%02d", i)
			for n := 0; time.Now().Before(deadline); n++ {
				// EAN-13s of 100 items, as a receiving dock scans them.
				log, err := m.Scan(ctx, name, ean13(400638133000+int64(n%100)))
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				ops.Add(int64(len(log.Seqs)))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, nil, firstErr
	}
	sample, err := st.Outbox(1, 256, 1<<20)
	if err != nil {
		return 0, nil, err
	}
	return float64(ops.Load()) / elapsed.Seconds(), sample, nil
}

// ean13 returns the 12-digit body with its check digit.
func ean13(body int64) string { return withCheck(fmt.Sprintf("%012d", body)) }

// rawTxnLoop writes one ~60-byte value per durable transaction from n
// goroutines for d, with the agent's Badger options.
func rawTxnLoop(n int, d time.Duration) (float64, error) {
	dir, err := os.MkdirTemp("", "shelfsync-bench-raw-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	db, err := badger.Open(smallOptions(dir))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var seq atomic.Uint64
	var ops atomic.Int64
	var wg sync.WaitGroup
	val := make([]byte, 60)
	start := time.Now()
	deadline := start.Add(d)
	var firstErr atomic.Value
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				k := make([]byte, 10)
				copy(k, "o/")
				binary.BigEndian.PutUint64(k[2:], seq.Add(1))
				if err := db.Update(func(txn *badger.Txn) error { return txn.Set(k, val) }); err != nil {
					firstErr.Store(err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(ops.Load()) / time.Since(start).Seconds(), nil
}

// wireBytes compares a batch of real committed ops encoded as the uplink
// sends it to a current server (which announces ops-deflate: a CBOR
// OpBatch, DEFLATE-compressed) with the same ops as a JSON array. It logs
// the plain CBOR OpBatch too: the form sent to servers that predate
// ops-deflate.
func wireBytes(ops []protocol.Op) (Result, error) {
	if len(ops) == 0 {
		return Result{}, fmt.Errorf("no ops to measure")
	}
	hlc := ops[len(ops)-1].HLC
	enc, err := protocol.Encode(uplink.Batch("wh1", "dock-1", ops, hlc, protocol.FeatureOpsDeflate))
	if err != nil {
		return Result{}, err
	}
	plain, err := protocol.Encode(uplink.Batch("wh1", "dock-1", ops, hlc, 0))
	if err != nil {
		return Result{}, err
	}
	js := make([]api.OpItem, len(ops)) // as the agent's JSON API lists ops
	for i, o := range ops {
		js[i] = api.ItemOf(o)
	}
	jb, err := json.Marshal(map[string]any{"wh": "wh1", "gw": "dock-1", "first": ops[0].Seq, "last": ops[len(ops)-1].Seq, "ops": js})
	if err != nil {
		return Result{}, err
	}
	n := float64(len(ops))
	logf("wire: %d ops, ops-deflate (to servers announcing it) %d B (%.1f B/op); plain CBOR ops batch (older servers) %d B (%.1f B/op); JSON %d B (%.1f B/op)",
		len(ops), len(enc), float64(len(enc))/n, len(plain), float64(len(plain))/n, len(jb), float64(len(jb))/n)
	return result("wire_bytes_per_op", float64(len(enc))/n, "B/op", fmt.Sprintf("the same %d ops as JSON", len(ops)), float64(len(jb))/n), nil
}
