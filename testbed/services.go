package testbed

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

	"github.com/jackc/pgx/v5"
)

// IntegrationEnv is set (to anything) when the outside services must be
// there: a test that finds one missing fails instead of skipping.
const IntegrationEnv = "SHELFSYNC_INTEGRATION"

// Integration reports whether IntegrationEnv is set.
func Integration() bool { return os.Getenv(IntegrationEnv) != "" }

// DevPostgres is the database deploy/dev/services.sh provisions.
const DevPostgres = "postgres://shelfsync:shelfsync@127.0.0.1:5432/shelfsync?sslmode=disable"

// PostgresURL returns SHELFSYNC_TEST_PG, else DevPostgres under the
// integration flag, else "" (no PostgreSQL to test against).
func PostgresURL() string {
	if dsn := os.Getenv("SHELFSYNC_TEST_PG"); dsn != "" {
		return dsn
	}
	if Integration() {
		return DevPostgres
	}
	return ""
}

// MosquittoBin returns the mosquitto program: SHELFSYNC_TEST_MOSQUITTO,
// /usr/sbin/mosquitto, or mosquitto on PATH.
func MosquittoBin() (string, error) {
	if p := os.Getenv("SHELFSYNC_TEST_MOSQUITTO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SHELFSYNC_TEST_MOSQUITTO: %w", err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("mosquitto not found (SHELFSYNC_TEST_MOSQUITTO, /usr/sbin, PATH): run deploy/dev/services.sh mosquitto")
}

// Mosquitto is a mosquitto broker on a free loopback port: plain TCP,
// anonymous, no persistence (test only).
type Mosquitto struct {
	Addr string // host:port
	Proc *Proc
}

// StartMosquitto writes a config into dir (with extraConf lines appended)
// and starts the broker, waiting until it accepts connections.
func StartMosquitto(ctx context.Context, bin, dir, extraConf string) (*Mosquitto, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf(`# plain TCP, no authentication: test only
listener %s 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
max_queued_messages 1000000
max_inflight_messages 0
set_tcp_nodelay true
%s
`, port, extraConf)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return nil, err
	}
	p, err := Start(Spec{Name: "mosquitto", Bin: bin, Args: []string{"-c", conf}})
	if err != nil {
		return nil, err
	}
	if err := waitUp(ctx, p, "mosquitto listening on "+addr, func() bool { return Listening(addr) }); err != nil {
		p.Stop(9)
		return nil, err
	}
	return &Mosquitto{Addr: addr, Proc: p}, nil
}

// NewSchema makes an empty PostgreSQL schema named prefix_<random> and
// returns a URL whose search_path is that schema, and a func that drops it.
func NewSchema(ctx context.Context, dsn, prefix string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w (deploy/dev/services.sh postgres)", dsn, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + "_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	drop := func() {
		if c, err := pgx.Connect(context.Background(), dsn); err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}
	u, err := url.Parse(dsn)
	if err != nil {
		drop()
		return "", nil, fmt.Errorf("%s is not a postgres:// URL: %w", dsn, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
