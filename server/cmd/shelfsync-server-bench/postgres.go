package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// benchPostgres measures the ingest on the PostgreSQL store: the same
// simulated gateways as benchIngest push their backlogs through an
// external Mosquitto into 1, then 3, shelfsync-server replicas sharing one
// database (--gateway-leases: each gateway handled by one replica). It
// returns
//
//	server_ingest_ops_per_s_postgres_1replica
//	server_ingest_ops_per_s_postgres_3replicas
//
// with the Badger figure of the same run (badgerRate) as baseline. The
// database is SHELFSYNC_BENCH_PG, else SHELFSYNC_TEST_PG, else the one
// deploy/dev/services.sh provisions; the broker is SHELFSYNC_TEST_MOSQUITTO
// or /usr/sbin/mosquitto. Without them it logs why and returns nothing.
// Each run gets a fresh schema, dropped afterwards.
func benchPostgres(ctx context.Context, root string, gateways, warehouses, perGW, batch int, badgerRate float64) ([]Result, error) {
	dsn := os.Getenv("SHELFSYNC_BENCH_PG")
	if dsn == "" {
		dsn = os.Getenv("SHELFSYNC_TEST_PG")
	}
	if dsn == "" {
		dsn = "postgres://shelfsync:shelfsync@127.0.0.1:5432/shelfsync?sslmode=disable"
	}
	mosquitto := os.Getenv("SHELFSYNC_TEST_MOSQUITTO")
	if mosquitto == "" {
		mosquitto = "/usr/sbin/mosquitto"
	}
	if _, err := os.Stat(mosquitto); err != nil {
		logf("postgres: skipped: no mosquitto at %s (deploy/dev/services.sh mosquitto)", mosquitto)
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
	bin := filepath.Join(work, "shelfsync-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./server/cmd/shelfsync-server")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	var out []Result
	for _, replicas := range []int{1, 3} {
		rate, err := pgRun(ctx, work, bin, mosquitto, dsn, replicas, gateways, warehouses, perGW, batch)
		if err != nil {
			return out, fmt.Errorf("postgres, %d replicas: %w", replicas, err)
		}
		name := "server_ingest_ops_per_s_postgres_1replica"
		if replicas > 1 {
			name = fmt.Sprintf("server_ingest_ops_per_s_postgres_%dreplicas", replicas)
		}
		out = append(out, result(name, rate, "ops/s", "the Badger store's server_ingest_ops_per_s of the same run", badgerRate))
	}
	return out, nil
}

// pgRun runs one measurement with its own broker, schema and replicas.
func pgRun(ctx context.Context, work, bin, mosquitto, dsn string, replicas, gateways, warehouses, perGW, batch int) (float64, error) {
	dir := filepath.Join(work, fmt.Sprint("run", replicas))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	storeDSN, drop, err := benchSchema(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer drop()
	mqtt := freeAddr()
	_, port, _ := net.SplitHostPort(mqtt)
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nmax_queued_messages 1000000\nmax_inflight_messages 0\nset_tcp_nodelay true\n", port)), 0o644); err != nil {
		return 0, err
	}
	broker, err := start(filepath.Join(dir, "mosquitto.log"), mosquitto, "-c", conf)
	if err != nil {
		return 0, err
	}
	defer stop(broker)
	if err := poll(10*time.Second, "mosquitto", func() bool {
		c, err := net.Dial("tcp", mqtt)
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		return 0, err
	}
	if out, err := exec.CommandContext(ctx, bin, "migrate", "--store", storeDSN).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("migrate: %w\n%s", err, out)
	}
	for i := range replicas {
		http := freeAddr()
		args := []string{"run", "--store", storeDSN, "--broker", "tcp://" + mqtt, "--http", http,
			"--data", filepath.Join(dir, fmt.Sprint("server", i)), "--log-level", "warn"}
		if replicas > 1 {
			args = append(args, "--gateway-leases")
		}
		srv, err := start(filepath.Join(dir, fmt.Sprintf("server%d.log", i)), bin, args...)
		if err != nil {
			return 0, err
		}
		defer stop(srv)
		if err := poll(60*time.Second, "replica healthy", func() bool { return get("http://"+http+"/healthz") == nil }); err != nil {
			return 0, err
		}
	}
	gws := make([]*gateway, gateways)
	for i := range gws {
		gws[i] = newGateway(fmt.Sprintf("wh%d", i%warehouses+1), fmt.Sprintf("gw%03d", i+1), perGW, batch)
		if err := gws[i].connect("tcp://" + mqtt); err != nil {
			return 0, err
		}
	}
	defer func() {
		for _, g := range gws {
			g.client.Disconnect(100)
		}
	}()
	for _, g := range gws {
		if err := g.waitAck(0, 60*time.Second); err != nil {
			return 0, fmt.Errorf("%s: hello not answered: %w", g.gw, err)
		}
	}
	begin := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(gws))
	for i, g := range gws {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = g.run(10 * time.Minute) }()
	}
	wg.Wait()
	took := time.Since(begin)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	resends := 0
	for _, g := range gws {
		resends += g.resends
	}
	rate := float64(gateways*perGW) / took.Seconds()
	logf("postgres: %d replicas: %d gateways × %d ops acked in %s: %.0f ops/s (%d resends)", replicas, gateways, perGW, took.Round(time.Millisecond), rate, resends)
	return rate, nil
}

// benchSchema creates an empty schema and returns a DSN that uses it, and
// a func that drops it.
func benchSchema(ctx context.Context, dsn string) (string, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("SHELFSYNC_BENCH_PG must be a postgres:// URL: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "shelfsync_bench_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		if c, err := pgx.Connect(context.Background(), dsn); err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}
	return u.String(), drop, nil
}
