package storetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// The store.Records contract: the key-value space of the packages beside
// the ledger and the ledger writes that go with their records, for
// backends that implement store.Records.

func records(t *testing.T, s store.Store) store.Records {
	t.Helper()
	r, ok := s.(store.Records)
	if !ok {
		t.Skipf("%T does not implement store.Records", s)
	}
	return r
}

func testRecords(t *testing.T, open func(*testing.T) store.Store, c config) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store, r store.Records, c config)
	}{
		{"KV", testKV},
		{"ScanLarge", testScanLarge},
		{"UpdateIsAtomic", testUpdateAtomic},
		{"ConcurrentReadModifyWrite", testRecordsRMW},
		{"LedgerSide", testRecordsLedger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s, records(t, s), c)
		})
	}
}

func scanAll(t *testing.T, r store.Records, prefix string, o store.ScanOptions) []string {
	t.Helper()
	var got []string
	require.NoError(t, r.View(func(tx store.Tx) error {
		return tx.Scan([]byte(prefix), o, func(k, v []byte) error {
			if o.KeysOnly {
				require.Nil(t, v)
			} else {
				require.Equal(t, "v:"+string(k), string(v))
			}
			got = append(got, string(k))
			return nil
		})
	}))
	return got
}

func testKV(t *testing.T, _ store.Store, r store.Records, _ config) {
	keys := []string{"t/a", "t/a\x00b", "t/a\xff", "t/b", "t/\xff\xff", "t/", "u/a", "s/z"}
	require.NoError(t, r.Update(func(tx store.Tx) error {
		for _, k := range keys {
			if err := tx.Set([]byte(k), []byte("v:"+k)); err != nil {
				return err
			}
		}
		// A write is visible to the rest of its own transaction.
		v, ok, err := tx.Get([]byte("t/b"))
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "v:t/b", string(v))
		return nil
	}))
	want := []string{"t/", "t/\xff\xff", "t/a", "t/a\x00b", "t/a\xff", "t/b"}
	slices.Sort(want) // byte-wise
	require.Equal(t, want, scanAll(t, r, "t/", store.ScanOptions{}))
	rev := slices.Clone(want)
	slices.Reverse(rev)
	require.Equal(t, rev, scanAll(t, r, "t/", store.ScanOptions{Reverse: true}))
	require.Equal(t, want, scanAll(t, r, "t/", store.ScanOptions{KeysOnly: true}))
	require.Equal(t, []string{"t/a", "t/a\x00b", "t/a\xff"}, scanAll(t, r, "t/a", store.ScanOptions{}))
	require.Empty(t, scanAll(t, r, "none/", store.ScanOptions{}))

	// ErrStopScan ends a scan without error.
	var n int
	require.NoError(t, r.View(func(tx store.Tx) error {
		return tx.Scan([]byte("t/"), store.ScanOptions{}, func(k, v []byte) error {
			n++
			if n == 2 {
				return store.ErrStopScan
			}
			return nil
		})
	}))
	require.Equal(t, 2, n)

	// Delete, a missing key, and an empty value.
	require.NoError(t, r.Update(func(tx store.Tx) error {
		if err := tx.Delete([]byte("t/a")); err != nil {
			return err
		}
		return tx.Set([]byte("e/"), []byte{})
	}))
	require.NoError(t, r.View(func(tx store.Tx) error {
		_, ok, err := tx.Get([]byte("t/a"))
		require.NoError(t, err)
		require.False(t, ok, "deleted")
		v, ok, err := tx.Get([]byte("e/"))
		require.NoError(t, err)
		require.True(t, ok, "an empty value is a value")
		require.Empty(t, v)
		return nil
	}))
	// A value handed out is the caller's: changing it changes nothing.
	require.NoError(t, r.View(func(tx store.Tx) error {
		v, _, err := tx.Get([]byte("t/b"))
		require.NoError(t, err)
		v[0] = 'X'
		v2, _, err := tx.Get([]byte("t/b"))
		require.NoError(t, err)
		require.Equal(t, "v:t/b", string(v2))
		return nil
	}))
}

// testScanLarge scans more keys than a backend reads at once, in both
// directions, while fn writes through the same transaction.
func testScanLarge(t *testing.T, _ store.Store, r store.Records, _ config) {
	const n = 700
	require.NoError(t, r.Update(func(tx store.Tx) error {
		for i := range n {
			k := fmt.Sprintf("big/%04d", i)
			if err := tx.Set([]byte(k), []byte("v:"+k)); err != nil {
				return err
			}
		}
		return nil
	}))
	var seen []string
	require.NoError(t, r.Update(func(tx store.Tx) error {
		seen = nil
		return tx.Scan([]byte("big/"), store.ScanOptions{}, func(k, v []byte) error {
			seen = append(seen, string(k))
			return tx.Set(append([]byte("copy/"), k...), v) // another prefix
		})
	}))
	require.Len(t, seen, n)
	require.True(t, slices.IsSorted(seen))
	rev := scanAll(t, r, "big/", store.ScanOptions{Reverse: true})
	require.Len(t, rev, n)
	require.Equal(t, "big/0699", rev[0])
	require.Equal(t, "big/0000", rev[n-1])
	var copies int
	require.NoError(t, r.View(func(tx store.Tx) error {
		return tx.Scan([]byte("copy/"), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error { copies++; return nil })
	}))
	require.Equal(t, n, copies)
}

func testUpdateAtomic(t *testing.T, s store.Store, r store.Records, _ config) {
	boom := errors.New("boom")
	err := r.Update(func(tx store.Tx) error {
		if err := tx.Set([]byte("a/1"), []byte("x")); err != nil {
			return err
		}
		if err := tx.AppendDown("w", "", protocol.DownTask, "task/T1", protocol.Task{ID: "T1"}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.NoError(t, r.View(func(tx store.Tx) error {
		_, ok, err := tx.Get([]byte("a/1"))
		require.NoError(t, err)
		require.False(t, ok, "a failed Update writes nothing")
		return nil
	}))
	d, err := s.DownFrom(context.Background(), "w", "g", 0, 10)
	require.NoError(t, err)
	require.Empty(t, d.Items, "a failed Update sends nothing downstream")
}

// testRecordsRMW increments one counter from two handles (replicas) at
// once: no increment may be lost, and a "create once" key is created once.
func testRecordsRMW(t *testing.T, s store.Store, r store.Records, c config) {
	r2 := records(t, c.replica(t, s))
	const per = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for _, h := range []store.Records{r, r2, r, r2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				var made bool
				err := h.Update(func(tx store.Tx) error {
					made = false
					n, err := store.GetU64(tx, []byte("n/counter"))
					if err != nil {
						return err
					}
					if err := tx.Set([]byte("n/counter"), binary.BigEndian.AppendUint64(nil, n+1)); err != nil {
						return err
					}
					if _, ok, err := tx.Get([]byte("n/once")); err != nil {
						return err
					} else if !ok {
						made = true
						return tx.Set([]byte("n/once"), []byte("1"))
					}
					return nil
				})
				if !errors.Is(err, store.ErrConflict) {
					require.NoError(t, err)
				}
				if err == nil && made {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, created, "a key created once")
	var got uint64
	require.NoError(t, r.View(func(tx store.Tx) error {
		var err error
		got, err = store.GetU64(tx, []byte("n/counter"))
		return err
	}))
	// Updates that gave up after repeated conflicts wrote nothing; with
	// a retrying backend none should give up at this load.
	require.Equal(t, uint64(4*per), got)
}

// testRecordsLedger checks the ledger side of a record transaction against
// what the Store and Actions read back.
func testRecordsLedger(t *testing.T, s store.Store, r store.Records, _ config) {
	ctx := context.Background()
	Apply(t, s, Batch("w", "g", Receive(1, 1000, "L", "s", 5), Receive(2, 2000, "L", "s", 3), Receive(3, 1500, "M", "t", 2)))
	task := protocol.Task{ID: "T1", Kind: "count", Location: "L"}
	require.NoError(t, r.Update(func(tx store.Tx) error {
		wm, err := tx.Watermark("w", "g")
		require.NoError(t, err)
		require.Equal(t, uint64(3), wm)
		rows, err := tx.Stock("w", "s")
		require.NoError(t, err)
		require.Equal(t, []store.StockRow{{Warehouse: "w", Location: "L", SKU: "s", OnHand: 8}}, rows)
		rows, err = tx.StockWhere(store.StockQuery{Warehouse: "w", Location: "M"})
		require.NoError(t, err)
		require.Equal(t, []store.StockRow{{Warehouse: "w", Location: "M", SKU: "t", OnHand: 2}}, rows)
		o, ok, err := tx.Origin(ledger.Key{WH: "w", Location: "L", SKU: "s"})
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, protocol.MakeHLC(1000, 0), o.HLC, "the earliest positive delta")
		require.Equal(t, protocol.OpReceive, o.Kind)
		var seqs []uint64
		require.NoError(t, tx.ScanOps("w", func(gw string, op *protocol.Op) error {
			require.Equal(t, "g", gw)
			seqs = append(seqs, op.Seq)
			return nil
		}))
		require.Equal(t, []uint64{1, 2, 3}, seqs)
		if err := tx.PutTask("w", "", task); err != nil {
			return err
		}
		got, ok, err := tx.Task("w", "T1")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, task, got)
		if err := tx.AppendDown("w", "g", protocol.DownTask, "task/T2", protocol.Task{ID: "T2", Kind: "count"}); err != nil {
			return err
		}
		return nil
	}))
	d := readDown(t, s, "w")
	var ids []string
	for _, tk := range d.tasks {
		ids = append(ids, tk.ID)
	}
	require.Equal(t, []string{"T1", "T2"}, ids, "the record transaction's downstream items, in order")
	require.Equal(t, int64(8), d.stock[ledger.Key{WH: "w", Location: "L", SKU: "s"}])

	a, ok := s.(store.Actions)
	if !ok {
		return
	}
	tasks, err := a.Tasks(ctx, "w")
	require.NoError(t, err)
	require.Equal(t, []protocol.Task{task}, tasks)

	// A conflict raised in a record transaction, and an order with picks.
	c := conflicts.Conflict{ID: "oversell:w:s", Kind: conflicts.KindOversell, Status: conflicts.StatusOpen, Holds: true, Warehouse: "w", SKU: "s"}
	var written bool
	require.NoError(t, r.Update(func(tx store.Tx) error {
		var err error
		_, written, err = tx.RaiseConflict(c)
		return err
	}))
	require.True(t, written)
	require.Equal(t, conflicts.KindOversell, conflictByID(t, a, "w", c.ID).Kind)

	p := pick(4, 3000, "L", "s", 2)
	p.Refs = &protocol.Refs{Order: "O1", OrderLine: 1}
	Apply(t, s, Batch("w", "g", p))
	o := store.Order{Warehouse: "w", ID: "O1", Channel: "web", Status: "open", Lines: []store.OrderLine{{Line: 1, SKU: "s", Qty: 1}}}
	var cs []conflicts.Conflict
	require.NoError(t, r.Update(func(tx store.Tx) error {
		if err := tx.Set([]byte("or/x/web\x00E1"), []byte("w\x00O1")); err != nil {
			return err
		}
		var err error
		cs, err = tx.PutOrder(o)
		return err
	}))
	require.Len(t, cs, 1, "the pick already exceeds the line: over-pick")
	require.Equal(t, conflicts.KindOverPick, cs[0].Kind)
	got, picked, err := a.GetOrder(ctx, "w", "O1")
	require.NoError(t, err)
	require.Equal(t, o, got)
	require.Equal(t, map[uint32]int64{1: 2}, picked)
	require.NoError(t, r.View(func(tx store.Tx) error {
		ps, err := tx.OrderPicks("w", "O1")
		require.NoError(t, err)
		require.Equal(t, []store.OrderPick{{Line: 1, SKU: "s", Qty: 2, Gateway: "g", Seq: 4}}, ps)
		v, ok, err := tx.Get([]byte("or/x/web\x00E1"))
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, bytes.Equal([]byte("w\x00O1"), v))
		return nil
	}))
}

// Retrying is a store.Records whose Update runs f once and rolls it back
// before running it for real, as when a transaction loses a race: for
// checking that callers' f can run twice.
type Retrying struct {
	store.Records
	Runs int // Updates called
}

var errLostRace = errors.New("storetest: lost race")

// Update implements store.Records.
func (r *Retrying) Update(f func(store.Tx) error) error {
	r.Runs++
	if err := r.Records.Update(func(tx store.Tx) error {
		if err := f(tx); err != nil {
			return err
		}
		return errLostRace
	}); !errors.Is(err, errLostRace) {
		return err
	}
	return r.Records.Update(f)
}
