package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/testbed"
)

// benchPostgres measures the ingest on the PostgreSQL store: the same
// simulated gateways as benchIngest push their backlogs through an
// external Mosquitto into 1, then 3, shelfsync-server replicas sharing one
// database (partitioned by warehouse, the replicas' default). It
// returns
//
//	server_ingest_ops_per_s_postgres_1replica
//	server_ingest_ops_per_s_postgres_3replicas
//
// with the Badger figure of the same run (badgerRate) as baseline, and
// what the work costs, summed over every server process and every
// PostgreSQL process (from /proc; only with PostgreSQL on this machine):
//
//	server_cpu_s_per_kop_1replica    CPU seconds per 1,000 applied ops
//	server_cpu_s_per_kop_3replicas   the same, baseline the 1-replica figure
//
// On a 2-core machine throughput cannot grow with replicas; the cost per
// op shows whether they divide the work or repeat it. The
// database is SHELFSYNC_BENCH_PG, else SHELFSYNC_TEST_PG, else the one
// deploy/dev/services.sh provisions; the broker is SHELFSYNC_TEST_MOSQUITTO
// or /usr/sbin/mosquitto. Without them it logs why and returns nothing.
// Each run gets a fresh schema, dropped afterwards.
func benchPostgres(ctx context.Context, gateways, warehouses, perGW, batch int, badgerRate float64) ([]Result, error) {
	dsn := os.Getenv("SHELFSYNC_BENCH_PG")
	if dsn == "" {
		dsn = os.Getenv("SHELFSYNC_TEST_PG")
	}
	if dsn == "" {
		dsn = "postgres://shelfsync:shelfsync@127.0.0.1:5432/shelfsync?sslmode=disable"
	}
	mosquitto, err := testbed.MosquittoBin()
	if err != nil {
		logf("postgres: skipped: %v", err)
		return nil, nil
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
	for _, replicas := range []int{1, 3} {
		rate, perKop, err := pgRun(ctx, work, bin, mosquitto, dsn, replicas, gateways, warehouses, perGW, batch)
		if err != nil {
			return out, fmt.Errorf("postgres, %d replicas: %w", replicas, err)
		}
		suffix := "1replica"
		if replicas > 1 {
			suffix = fmt.Sprintf("%dreplicas", replicas)
		}
		out = append(out, result("server_ingest_ops_per_s_postgres_"+suffix, rate, "ops/s", "the Badger store's server_ingest_ops_per_s of the same run", badgerRate))
		if perKop > 0 {
			if replicas == 1 {
				cpu1 = perKop
				cpu = append(cpu, result("server_cpu_s_per_kop_1replica", perKop, "s", "", 0))
			} else if cpu1 > 0 {
				cpu = append(cpu, result("server_cpu_s_per_kop_"+suffix, perKop, "s", "server_cpu_s_per_kop_1replica of the same run", cpu1))
			}
		}
	}
	return append(out, cpu...), nil
}

// pgRun runs one measurement with its own broker, schema and replicas; it
// returns the ops per second and the CPU seconds per 1,000 ops of the
// servers and PostgreSQL (0 when PostgreSQL is not on this machine).
func pgRun(ctx context.Context, work, bin, mosquitto, dsn string, replicas, gateways, warehouses, perGW, batch int) (rate, cpuPerKop float64, err error) {
	dir := filepath.Join(work, fmt.Sprint("run", replicas))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	storeDSN, drop, err := testbed.NewSchema(ctx, dsn, "shelfsync_bench")
	if err != nil {
		return 0, 0, err
	}
	defer drop()
	broker, err := testbed.StartMosquitto(ctx, mosquitto, dir, "")
	if err != nil {
		return 0, 0, err
	}
	defer broker.Proc.Stop(syscall.SIGTERM)
	mqtt := broker.Addr
	if out, err := exec.CommandContext(ctx, bin, "migrate", "--store", storeDSN).CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w\n%s", err, out)
	}
	var pids []int
	var urls []string
	for i := range replicas {
		http, err := testbed.FreeAddr()
		if err != nil {
			return 0, 0, err
		}
		args := []string{"--store", storeDSN, "--broker", "tcp://" + mqtt,
			"--data", filepath.Join(dir, fmt.Sprint("server", i)), "--log-level", "warn"}
		srv := &testbed.Server{Bin: bin, HTTP: http, Args: args, LogFile: filepath.Join(dir, fmt.Sprintf("server%d.log", i)), Name: fmt.Sprint("server", i)}
		if err := srv.Start(ctx); err != nil {
			return 0, 0, err
		}
		defer srv.Proc().Stop(syscall.SIGTERM)
		pids = append(pids, srv.Proc().Pid())
		urls = append(urls, "http://"+http+"/metrics")
	}
	gws := make([]*gateway, gateways)
	for i := range gws {
		gws[i] = newGateway(fmt.Sprintf("wh%d", i%warehouses+1), fmt.Sprintf("gw%03d", i+1), perGW, batch)
		if err := gws[i].connect("tcp://" + mqtt); err != nil {
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
	begin := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(gws))
	for i, g := range gws {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = g.run(10 * time.Minute) }()
	}
	wg.Wait()
	took := time.Since(begin)
	cpu1, cerr := cpuEach(pids)
	pg1, _ := postgresCPU()
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
		db := pg1 - pg0
		cpuPerKop = (servers + db) / (ops / 1000)
		logf("postgres: %d replicas: CPU %.1f s servers + %.1f s PostgreSQL = %.3f s per 1,000 ops", replicas, servers, db, cpuPerKop)
	}
	return rate, cpuPerKop, nil
}
