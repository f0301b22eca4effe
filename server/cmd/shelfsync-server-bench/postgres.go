package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/testbed"
)

// benchPostgres measures the ingest on the PostgreSQL store: the same
// simulated gateways as benchIngest push their backlogs into 1, then 3,
// shelfsync-server replicas sharing one database. Each replica embeds its
// broker, as the Badger ingest does; the 3 replicas' brokers form one NATS
// cluster (routes, the MQTT streams on all three) and the replicas divide
// the warehouses between them (each warehouse's consumer read by the
// replica holding its lease), the layout of deploy/k8s. Gateway i
// connects to replica i mod 3. It returns
//
//	server_ingest_ops_per_s_postgres_1replica
//	server_ingest_ops_per_s_postgres_3replicas
//
// with the Badger figure of the same run (badgerRate) as baseline, and
// what the work costs, summed over every server process and every
// PostgreSQL backend serving them (from /proc; only with PostgreSQL on
// this machine; runBackends says how they are told apart from the rest of
// the machine's PostgreSQL):
//
//	server_cpu_s_per_kop_1replica    CPU seconds per 1,000 applied ops
//	server_cpu_s_per_kop_3replicas   the same, baseline the 1-replica figure
//
// runs says which replica counts to measure and want which figures to
// return. On a 2-core machine throughput cannot grow with replicas; the
// cost per op shows whether they divide the work or repeat it. The
// database is SHELFSYNC_BENCH_PG, else SHELFSYNC_TEST_PG, else the one
// deploy/dev/services.sh provisions; without it, it logs why and returns
// nothing. Each run gets a fresh schema, dropped afterwards.
func benchPostgres(ctx context.Context, gateways, warehouses, perGW, batch int, badgerRate float64, runs []int, want func(figure string) bool) ([]Result, error) {
	dsn := os.Getenv("SHELFSYNC_BENCH_PG")
	if dsn == "" {
		dsn = os.Getenv("SHELFSYNC_TEST_PG")
	}
	if dsn == "" {
		dsn = "postgres://shelfsync:shelfsync@127.0.0.1:5432/shelfsync?sslmode=disable"
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		logf("postgres: skipped: %v (deploy/dev/services.sh postgres, or set SHELFSYNC_BENCH_PG)", err)
		return nil, nil
	}
	conn.Close(ctx)
	work, err := os.MkdirTemp("", "shelfsync-bench-pg-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	bins, err := testbed.Build(ctx)
	if err != nil {
		return nil, err
	}
	bin := bins.Server
	var out, cpu []Result
	var cpu1 float64
	for _, replicas := range runs {
		rate, perKop, err := pgRun(ctx, work, bin, dsn, replicas, gateways, warehouses, perGW, batch)
		if err != nil {
			return out, fmt.Errorf("postgres, %d replicas: %w", replicas, err)
		}
		suffix := "1replica"
		if replicas > 1 {
			suffix = fmt.Sprintf("%dreplicas", replicas)
		}
		if name := "server_ingest_ops_per_s_postgres_" + suffix; want(name) && badgerRate > 0 {
			out = append(out, result(name, rate, "ops/s", "the Badger store's server_ingest_ops_per_s of the same run", badgerRate))
		}
		if perKop > 0 {
			name := "server_cpu_s_per_kop_" + suffix
			if replicas == 1 {
				cpu1 = perKop
				if want(name) {
					cpu = append(cpu, result(name, perKop, "s", "", 0))
				}
			} else if cpu1 > 0 && want(name) {
				cpu = append(cpu, result(name, perKop, "s", "server_cpu_s_per_kop_1replica of the same run", cpu1))
			}
		}
	}
	return append(out, cpu...), nil
}

// pgRun runs one measurement with its own schema and replicas; it
// returns the ops per second and the CPU seconds per 1,000 ops of the
// servers (their embedded brokers included) and PostgreSQL (0 when
// PostgreSQL is not on this machine).
func pgRun(ctx context.Context, work, bin, dsn string, replicas, gateways, warehouses, perGW, batch int) (rate, cpuPerKop float64, err error) {
	dir := filepath.Join(work, fmt.Sprint("run", replicas))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	storeDSN, drop, err := testbed.NewSchema(ctx, dsn, "shelfsync_bench")
	if err != nil {
		return 0, 0, err
	}
	defer drop()
	// The servers' connections carry the run's schema as their
	// application_name: the CPU of the backends serving them is told
	// apart from the rest of the machine's PostgreSQL.
	tag := "shelfsync_bench"
	if u, err := url.Parse(storeDSN); err == nil {
		tag = u.Query().Get("search_path")
	}
	if storeDSN, err = tagDSN(storeDSN, tag); err != nil {
		return 0, 0, err
	}
	if out, err := exec.CommandContext(ctx, bin, "migrate", "--store", storeDSN).CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w\n%s", err, out)
	}
	addrs, err := testbed.FreeAddrs(3 * replicas)
	if err != nil {
		return 0, 0, err
	}
	https, mqtts, routes := addrs[:replicas], addrs[replicas:2*replicas], addrs[2*replicas:]
	srvs := make([]*testbed.Server, replicas)
	for i := range replicas {
		args := []string{"--store", storeDSN, "--mqtt", mqtts[i],
			"--data", filepath.Join(dir, fmt.Sprint("server", i)), "--log-level", "warn"}
		if replicas > 1 {
			args = append(args, "--cluster-listen", routes[i], "--cluster-routes", strings.Join(routes, ","), "--cluster-node", fmt.Sprint("node", i))
		}
		srvs[i] = &testbed.Server{Bin: bin, HTTP: https[i], Args: args, LogFile: filepath.Join(dir, fmt.Sprintf("server%d.log", i)), Name: fmt.Sprint("server", i)}
	}
	// A clustered node waits at start for a quorum of the others: start
	// them at once.
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i, srv := range srvs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = srv.Start(ctx) }()
	}
	wg.Wait()
	var pids []int
	var urls []string
	for i, srv := range srvs {
		if p := srv.Proc(); p != nil {
			defer p.Stop(syscall.SIGTERM)
		}
		if errs[i] != nil {
			return 0, 0, errs[i]
		}
		pids = append(pids, srv.Proc().Pid())
		urls = append(urls, "http://"+https[i]+"/metrics")
	}
	gws := make([]*gateway, gateways)
	for i := range gws {
		gws[i] = newGateway(fmt.Sprintf("wh%d", i%warehouses+1), fmt.Sprintf("gw%03d", i+1), perGW, batch)
		if err := gws[i].connect("tcp://" + mqtts[i%replicas]); err != nil {
			return 0, 0, err
		}
	}
	defer func() {
		for _, g := range gws {
			g.client.Disconnect(100)
		}
	}()
	for _, g := range gws {
		if err := g.waitAck(0, 60*time.Second); err != nil {
			return 0, 0, fmt.Errorf("%s: hello not answered: %w", g.gw, err)
		}
	}
	cpu0, err := cpuEach(pids)
	if err != nil {
		return 0, 0, err
	}
	pg0, local := postgresCPU()
	backends, berr := followBackends(ctx, dsn, tag)
	begin := time.Now()
	errs = make([]error, len(gws))
	for i, g := range gws {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = g.run(10 * time.Minute) }()
	}
	wg.Wait()
	took := time.Since(begin)
	cpu1, cerr := cpuEach(pids)
	pg1, _ := postgresCPU()
	var db float64
	nb := 0
	if berr == nil {
		db, nb = backends.end(ctx)
	}
	for _, err := range errs {
		if err != nil {
			return 0, 0, err
		}
	}
	resends := 0
	for _, g := range gws {
		resends += g.resends
	}
	ops := float64(gateways * perGW)
	rate = ops / took.Seconds()
	logf("postgres: %d replicas: %d gateways × %d ops acked in %s: %.0f ops/s (%d resends)", replicas, gateways, perGW, took.Round(time.Millisecond), rate, resends)
	var other float64
	for _, u := range urls {
		v, _ := testbed.Metric(u, "shelfsync_ingest_rejected_total", `reason="other_replica"`)
		other += v
	}
	var refused float64
	for _, u := range urls {
		v, _ := testbed.Metric(u, "shelfsync_broker_connect_refused_total", "")
		refused += v
	}
	logf("postgres: %d replicas: %.0f messages handed to a replica that does not hold their warehouse; %.0f connections refused", replicas, other, refused)
	switch {
	case cerr != nil:
		logf("postgres: %d replicas: server CPU not read: %v", replicas, cerr)
	case !local:
		logf("postgres: no PostgreSQL process on this machine: CPU per op not measured")
	default:
		var servers float64
		for i := range pids {
			used := cpu1[i] - cpu0[i]
			servers += used
			applied, _ := testbed.Metric(urls[i], "shelfsync_ingest_ops_total", "")
			held, _ := testbed.Metric(urls[i], "shelfsync_replica_warehouses", "")
			logf("postgres: %d replicas: server %d: %.1f s CPU, %.0f ops applied, %.0f warehouses held", replicas, i, used, applied, held)
		}
		machine := pg1 - pg0
		if berr != nil {
			logf("postgres: %d replicas: the run's backends not followed (%v): counting every postgres process of the machine", replicas, berr)
			db = machine
		}
		cpuPerKop = (servers + db) / (ops / 1000)
		logf("postgres: %d replicas: CPU %.1f s servers + %.1f s PostgreSQL (the run's %d backends; every postgres process of the machine: %.1f s) = %.3f s per 1,000 ops", replicas, servers, db, nb, machine, cpuPerKop)
	}
	return rate, cpuPerKop, nil
}
