// Command shelfsync-server-bench measures the server's ingest: 100
// simulated gateways (MQTT clients speaking the shelfsync protocol, as
// agents do: hello, op batches in a go-back-N window, downstream acks)
// push their backlogs into the real shelfsync-server binary (embedded
// broker and Badger store), built once by the testbed module. It prints one JSON line
// per figure:
//
//	server_ingest_ops_per_s  ops durably applied and acked per second, vs a raw
//	                         Badger batch write of the same ops
//	server_rss_mib_100gw     the server's peak RSS during that run, vs the idle server
//	server_ingest_resends    batches the gateways sent again in that run (an ack
//	                         that did not come in time, or a gap answer): wasted
//	                         work, vs the batches sent once each
//	broker_qos1_msgs_per_s_20pub, broker_lost_msgs: the embedded broker's
//	                         fan-in, vs Mosquitto (broker.go)
//	import_rss_mib           the server's peak RSS over the idle server while
//	                         it takes a 200 MB stock CSV, the whole file
//	                         applied, with import_rows_per_s and the RSS at
//	                         each tenth of the rows (import.go)
//
// Run it from inside the repository; `make bench` does.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/testbed"
)

// Result is one figure.
type Result struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baseline_value"`
	Ratio         float64 `json:"ratio"`
}

func result(name string, v float64, unit, baseline string, bv float64) Result {
	r := Result{Name: name, Value: round(v), Unit: unit, Baseline: baseline, BaselineValue: round(bv)}
	if bv != 0 {
		r.Ratio = round(v / bv)
	}
	return r
}

func round(v float64) float64 {
	switch {
	case v >= 1000:
		return float64(int64(v + 0.5))
	case v >= 1:
		return float64(int64(v*100+0.5)) / 100
	}
	return float64(int64(v*10000+0.5)) / 10000
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

func main() {
	var (
		out        string
		gateways   int
		perGW      int
		batch      int
		warehouses int
		workers    int
		profile    string
		only       string
		importMB   int
		importFor  time.Duration
		importSKUs int
	)
	flag.StringVar(&out, "out", "", "also append the JSON lines to this file")
	flag.IntVar(&gateways, "gateways", 100, "simulated gateways")
	flag.IntVar(&warehouses, "warehouses", 10, "warehouses the gateways are spread over")
	flag.IntVar(&perGW, "ops", 5000, "ops each gateway sends")
	flag.IntVar(&batch, "batch", 256, "ops per batch (the agent's default --batch-ops)")
	flag.IntVar(&workers, "workers", 0, "server --workers (0: the server's default)")
	flag.StringVar(&profile, "cpuprofile", "", "diagnostic: run the server in this process and write a CPU profile of the ingest here (and a heap profile at the highest RSS to this path + .heap)")
	flag.StringVar(&only, "only", "", "comma-separated parts to run (default all): ingest (Badger), postgres (1 and 3 replicas with embedded brokers, the 3 clustered; compared with the Badger ingest, measured first unless -baseline is set), postgres1 (server_ingest_ops_per_s_postgres_1replica against the Badger ingest of the same run, and server_cpu_s_per_kop_1replica), cpu (server_cpu_s_per_kop_1replica and server_cpu_s_per_kop_3replicas only), broker (the embedded broker's fan-in vs Mosquitto), import (import_rss_mib, a 200 MB stock CSV), orders (order_intake_per_s and order_p99_ms: intake racing for the last units)")
	flag.IntVar(&importMB, "import-mb", 200, "with -only import: the stock CSV's size in MB")
	flag.IntVar(&importSKUs, "import-skus", 50000, "with -only import: the distinct skus of the stock CSV, every row a stock key of its own (0: every row a new sku, the worst case for the order model, which holds each sku's availability)")
	flag.DurationVar(&importFor, "import-for", 0, "with -only import: stop after applying for this long (0: apply the whole file)")
	var baseline float64
	flag.Float64Var(&baseline, "baseline", 0, "with -only postgres or postgres1: the Badger server_ingest_ops_per_s to compare with instead of measuring it")
	flag.Parse()
	var w io.Writer = os.Stdout
	if out != "" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	want := func(part string) bool { return only == "" || strings.Contains(","+only+",", ","+part+",") }
	parts := []string{"ingest", "postgres", "postgres1", "cpu", "broker", "import", "orders"}
	for _, part := range strings.Split(only, ",") {
		if only != "" && !slices.Contains(parts, part) {
			fmt.Fprintf(os.Stderr, "bench: -only %q: the parts are %s\n", part, strings.Join(parts, ", "))
			os.Exit(2)
		}
	}
	pgRuns, pgFigure := postgresParts(want)
	badger := want("postgres") || want("postgres1")
	var rs []Result
	if want("ingest") || (badger && baseline == 0) {
		got, err := benchIngest(context.Background(), gateways, warehouses, perGW, batch, workers, profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: ingest:", err)
			os.Exit(1)
		}
		if len(got) > 0 {
			baseline = got[0].Value
		}
		if want("ingest") {
			rs = append(rs, got...)
		}
	}
	if profile == "" && len(pgRuns) > 0 && (baseline > 0 || !badger) {
		// The same ingest on PostgreSQL with 1 and 3 replicas (skipped,
		// with a message, when PostgreSQL is not there).
		pg, err := benchPostgres(context.Background(), gateways, warehouses, perGW, batch, baseline, pgRuns, pgFigure)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: postgres:", err)
		}
		rs = append(rs, pg...)
	}
	if profile == "" && want("broker") {
		br, err := benchBroker(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: broker:", err)
		}
		rs = append(rs, br...)
	}
	if profile == "" && want("import") {
		im, err := benchImport(context.Background(), int64(importMB)*1e6, importSKUs, importFor)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: import:", err)
		}
		rs = append(rs, im...)
	}
	if profile == "" && want("orders") {
		or, err := benchOrders(context.Background(), 100, 10, 32, 20)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: orders:", err)
			os.Exit(1)
		}
		rs = append(rs, or...)
	}
	for _, r := range rs {
		b, _ := json.Marshal(r)
		fmt.Fprintln(w, string(b))
	}
}

// postgresParts returns the replica counts the selected PostgreSQL parts
// measure and which of their figures they report.
func postgresParts(want func(string) bool) (runs []int, figure func(string) bool) {
	all, one, cpu := want("postgres"), want("postgres1"), want("cpu")
	switch {
	case all || (one && cpu):
		runs = []int{1, 3}
	case one:
		runs = []int{1}
	case cpu:
		runs = []int{1, 3}
	}
	figure = func(name string) bool {
		switch {
		case all:
			return true
		case strings.HasPrefix(name, "server_cpu_s_per_kop_"):
			return cpu || (one && name == "server_cpu_s_per_kop_1replica")
		case name == "server_ingest_ops_per_s_postgres_1replica":
			return one
		}
		return false
	}
	return runs, figure
}

func benchIngest(ctx context.Context, gateways, warehouses, perGW, batch, workers int, profile string) ([]Result, error) {
	bins, err := testbed.Build(ctx)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "shelfsync-bench-ingest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	gws := make([]*gateway, gateways)
	for i := range gws {
		gws[i] = newGateway(fmt.Sprintf("wh%d", i%warehouses+1), fmt.Sprintf("gw%03d", i+1), perGW, batch)
	}
	rawCPU0 := selfCPU()
	raw, err := rawBatchWrite(filepath.Join(work, "raw"), gws)
	if err != nil {
		return nil, err
	}
	total := gateways * perGW
	rawCPUPerKop := (selfCPU() - rawCPU0) / (float64(total) / 1000)
	logf("ingest: raw Badger batch write of the %d ops: %.0f ops/s", total, raw)

	addrs, err := testbed.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	httpAddr, mqttAddr := addrs[0], addrs[1]
	args := []string{"run", "--data", filepath.Join(work, "server"), "--http", httpAddr, "--mqtt", mqttAddr, "--log-level", "warn"}
	if workers > 0 {
		args = append(args, "--workers", fmt.Sprint(workers))
	}
	var srv *testbed.Proc
	pid := 0
	if profile != "" {
		stopSrv, err := inProcess(ctx, args[1:], profile)
		if err != nil {
			return nil, err
		}
		defer stopSrv()
		pid = os.Getpid()
	} else {
		srv, err = testbed.Start(testbed.Spec{Name: "server", LogFile: filepath.Join(work, "server.log"), Bin: bins.Server, Args: args})
		if err != nil {
			return nil, err
		}
		defer srv.Stop(syscall.SIGTERM)
		pid = srv.Pid()
	}
	if err := testbed.WaitFor(ctx, testbed.StartTimeout, "server healthy", func() bool { return testbed.HTTPOK("http://" + httpAddr + "/healthz") }); err != nil {
		return nil, err
	}
	time.Sleep(time.Second)
	idle := testbed.PeakRSS(pid)

	// Connect every gateway and wait for the answer to its hello.
	for _, g := range gws {
		if err := g.connect("tcp://" + mqttAddr); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, g := range gws {
			g.client.Disconnect(100)
		}
	}()
	for _, g := range gws {
		if err := g.waitAck(0, 30*time.Second); err != nil {
			return nil, fmt.Errorf("%s: hello not answered: %w", g.gw, err)
		}
	}
	var peak int64
	var atPeak memoryParts // the server's own account when its RSS was highest
	stopSample := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for tick := 0; ; tick++ {
			if rss := testbed.PeakRSS(pid); rss > peak && profile != "" {
				writeHeapProfile(profile + ".heap") // in-process: the heap at the highest RSS so far
			}
			peak = max(peak, testbed.PeakRSS(pid))
			if tick%10 == 0 {
				if m, err := readMemory("http://" + httpAddr + "/metrics"); err == nil && m.total() > atPeak.total() {
					atPeak = m
				}
			}
			select {
			case <-stopSample:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	cpu0, _, _, _, cpuErr := procTimes(pid)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(gws))
	for i, g := range gws {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = g.run(5 * time.Minute) }()
	}
	wg.Wait()
	took := time.Since(start)
	cpu1, _, _, _, cpuErr1 := procTimes(pid)
	close(stopSample)
	<-sampled
	peak = max(peak, testbed.PeakRSS(pid))
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	rate := float64(total) / took.Seconds()
	var resends, sent, expiries int
	for _, g := range gws {
		resends += g.resends
		expiries += g.expiry
		sent += (len(g.ops) + g.batch - 1) / g.batch
	}
	logf("ingest: %d gateways × %d ops acked in %s: %.0f ops/s (%d resends, %d ack timeouts); server peak RSS %.1f MiB (idle %.1f)",
		gateways, perGW, took.Round(time.Millisecond), rate, resends, expiries, mib(peak), mib(idle))
	out := []Result{
		result("server_ingest_ops_per_s", rate, "ops/s", fmt.Sprintf("raw Badger batch write of the same %d ops (WriteBatch, synced)", total), raw),
		result(fmt.Sprintf("server_rss_mib_%dgw", gateways), mib(peak), "MiB", "the idle server before the gateways connect", mib(idle)),
		result("server_ingest_resends", float64(resends), "batches", "the batches of that run, each sent once", float64(sent)),
	}
	if profile == "" && cpuErr == nil && cpuErr1 == nil {
		// CPU per op is steadier than ops/s on a shared machine: it does
		// not count the time the server waited for a core.
		perKop := (cpu1 - cpu0) / (float64(total) / 1000)
		logf("ingest: server CPU %.2f s for %d ops (%.4f s per 1,000; the raw write %.4f)", cpu1-cpu0, total, perKop, rawCPUPerKop)
		out = append(out, result("server_cpu_s_per_kop_badger", perKop, "s", "CPU seconds per 1,000 ops of the raw Badger batch write of the same ops", rawCPUPerKop))
	}
	if atPeak.total() > 0 {
		logf("ingest: where the memory goes (shelfsync_memory_bytes at the highest RSS sampled, %.1f MiB): %s", atPeak.total()/(1<<20), atPeak)
		out = append(out, result(fmt.Sprintf("server_go_heap_mib_%dgw", gateways), atPeak.heap()/(1<<20), "MiB",
			"the server's resident memory at that moment (the rest: free heap, stacks, runtime, and outside Go: Badger's mmaps)", atPeak.total()/(1<<20)))
	}
	return out, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// rawBatchWrite writes every gateway's ops (CBOR, keyed like the server's
// op log) with one Badger WriteBatch and returns ops/s.
func rawBatchWrite(dir string, gws []*gateway) (float64, error) {
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).WithNumVersionsToKeep(1))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	n := 0
	start := time.Now()
	wb := db.NewWriteBatch()
	for _, g := range gws {
		for i := range g.ops {
			b, err := protocol.Marshal(&g.ops[i])
			if err != nil {
				wb.Cancel()
				return 0, err
			}
			k := []byte("o/" + g.wh + "\x00" + g.gw + "\x00")
			k = binary.BigEndian.AppendUint64(k, g.ops[i].Seq)
			if err := wb.Set(k, b); err != nil {
				wb.Cancel()
				return 0, err
			}
			n++
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
