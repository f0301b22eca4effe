package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// benchOrders measures order intake: 3 channels × 32 clients race for the
// last units of 100 skus with single-unit checkout holds and orders
// (half each), against the order model over the server's Badger store on
// disk (synchronous writes), and a raw loop of durable Badger transactions
// by 32 writers in the same run. The channels differ: web refuses, market
// backorders, shop is capped. It fails unless exactly the stock was held
// or reserved, nothing beyond it, and every other request was refused or
// backordered.
//
//	order_intake_per_s: requests answered per second (held, reserved,
//	  refused or backordered), vs raw durable transactions per second
//	order_p99_ms: the 99th percentile of one request's latency
func benchOrders(ctx context.Context, skus, perSKU, clientsPerChannel, perClient int) ([]Result, error) {
	dir, err := os.MkdirTemp("", "shelfsync-bench-orders-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := badger.Open(badger.Options{Dir: filepath.Join(dir, "store")})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	names := make([]string, skus)
	for i := range names {
		names[i] = fmt.Sprintf("S%03d", i)
		if _, _, err := st.IssueOp(ctx, "wh1", protocol.Op{HLC: protocol.MakeHLC(int64(1000+i), 0), Kind: protocol.OpReceive, Location: "BIN-1", SKU: names[i], Qty: int64(perSKU)}); err != nil {
			return nil, err
		}
	}
	svc := orders.New(orders.Config{}, st)
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(runCtx) }()
	defer func() { stop(); <-done }()
	capN := int64(perSKU / 2)
	for _, c := range []orders.Channel{{Name: "web", SharePct: 100}, {Name: "market", SharePct: 100, Policy: orders.PolicyBackorder}, {Name: "shop", SharePct: 100, Cap: &capN}} {
		if _, err := svc.PutChannel(ctx, c); err != nil {
			return nil, err
		}
	}

	type tally struct {
		granted, refused, backordered int
		webRefused                    map[string]bool // skus web (no cap, the whole pool) was refused
		lat                           []time.Duration
		err                           error
	}
	channels := []string{"web", "market", "shop"}
	tallies := make([]tally, len(channels)*clientsPerChannel)
	var wg sync.WaitGroup
	start := time.Now()
	for ci, ch := range channels {
		for k := range clientsPerChannel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := &tallies[ci*clientsPerChannel+k]
				t.webRefused = map[string]bool{}
				r := rand.New(rand.NewPCG(uint64(ci), uint64(k)))
				for i := range perClient {
					sku := names[r.IntN(len(names))]
					id := fmt.Sprintf("%d-%d", k, i)
					lines := []orders.Line{{SKU: sku, Qty: 1}}
					t0 := time.Now()
					var o orders.Order
					var err error
					if i%2 == 0 {
						o, _, err = svc.Hold(ctx, orders.NewHold{Warehouse: "wh1", Channel: ch, CheckoutID: id, Lines: lines})
					} else {
						o, _, err = svc.Create(ctx, orders.NewOrder{Warehouse: "wh1", Channel: ch, ExternalID: id, Lines: lines})
					}
					t.lat = append(t.lat, time.Since(t0))
					switch {
					case errors.Is(err, orders.ErrUnavailable):
						t.refused++
						t.webRefused[sku] = ch == "web"
					case err != nil:
						t.err = err
						return
					case o.Status == orders.StatusBackordered:
						t.backordered++
					default:
						t.granted++
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	var granted, refused, backordered int
	webRefused := map[string]bool{}
	for _, t := range tallies {
		for sku, w := range t.webRefused {
			webRefused[sku] = webRefused[sku] || w
		}
		if t.err != nil {
			return nil, fmt.Errorf("intake: %w", t.err)
		}
		granted, refused, backordered = granted+t.granted, refused+t.refused, backordered+t.backordered
		all = append(all, t.lat...)
	}
	slices.Sort(all)
	p99 := all[len(all)*99/100]
	rate := float64(len(all)) / elapsed.Seconds()

	// The check: what was granted is what is reserved, never beyond a
	// sku's stock, and a sku web (uncapped, the whole pool) was refused is
	// gone to the last unit.
	svc.Flush(ctx)
	rows, _, _ := svc.Availability("wh1", "")
	var reserved int64
	var bad []string
	for _, a := range rows {
		reserved += a.Reserved
		if a.Available < 0 || (webRefused[a.SKU] && a.Available != 0) {
			bad = append(bad, fmt.Sprintf("%s: %d reserved of %d, %d left", a.SKU, a.Reserved, a.Sellable, a.Available))
		}
	}
	stock := int64(skus * perSKU)
	logf("orders: %d requests in %v: %d held or reserved, %d refused, %d backordered; stock %d, reserved %d, %d skus gone to the last unit", len(all), elapsed.Round(time.Millisecond), granted, refused, backordered, stock, reserved, len(webRefused))
	if int64(granted) != reserved || reserved > stock || len(bad) > 0 || granted+refused+backordered != len(all) {
		return nil, fmt.Errorf("orders: %d granted, %d reserved of %d in stock; %v: the intake promised what it should not, or refused what it had", granted, reserved, stock, bad)
	}

	raw, err := rawDurableTxns(filepath.Join(dir, "raw"), len(all))
	if err != nil {
		return nil, err
	}
	return []Result{
		result("order_intake_per_s", rate, "requests/s", "raw durable Badger transactions/s, 32 writers", raw),
		result("order_p99_ms", float64(p99.Microseconds())/1000, "ms", "target", 50),
	}, nil
}

// rawDurableTxns runs n one-key read-modify-write transactions with
// synchronous writes from 32 writers and returns transactions per second.
func rawDurableTxns(dir string, n int) (float64, error) {
	const writers = 32
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).WithNumVersionsToKeep(1))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				k := fmt.Appendf(nil, "r/%d/%d", w, i)
				if err := db.Update(func(txn *bdb.Txn) error {
					if _, err := txn.Get(k); err != nil && !errors.Is(err, bdb.ErrKeyNotFound) {
						return err
					}
					return txn.Set(k, []byte("1"))
				}); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
