// Package config is the agent's configuration: the Config struct, the
// flag that sets each field with its documented default (Register), and
// Validate. github.com/shelfsync/shelfsync/flagconf fills those flags from a
// TOML file, SHELFSYNC_* environment variables and the command line, and
// writes `config print`.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/flagconf"
	"github.com/shelfsync/shelfsync/protocol"
)

// Config is the agent's whole configuration.
type Config struct {
	File         string
	DataDir      string
	Warehouse    string
	Gateway      string
	BrokerURL    string
	Username     string
	Password     string
	HTTPAddr     string
	Devices      []string
	ReceivingLoc string
	IdleTimeout  time.Duration
	Root         string
	LogLevel     string
	LogFormat    string
	SmallStore   bool
	MaxBatchOps  int
	Linger       time.Duration
	AckTimeout   time.Duration
	// Retention of acknowledged ops, for a server restored from a backup
	// or replaced (protocol SPEC.md §6.1).
	RetainFor     time.Duration
	RetainOps     int64
	RetainMinFree int64
	// TaskRetention: closed tasks are dropped this long after they closed
	// (store.Options.TaskRetention).
	TaskRetention time.Duration
	// DiskReserve and DiskLow guard the data disk (store.Options).
	DiskReserve, DiskLow int64
	// ClockMaxOffset: a server clock further ahead is not merged.
	ClockMaxOffset time.Duration
	Security       // TLS and broker identity (security.go)
}

type multi struct{ v *[]string }

func (m multi) String() string {
	if m.v == nil {
		return ""
	}
	return strings.Join(*m.v, " ")
}
func (m multi) Set(s string) error { *m.v = append(*m.v, s); return nil }

// Register defines every flag of `shelfsync-agent run` on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.File, "config", "", "TOML config file; keys are the flag names (device = [\"a=barcode:/dev/x\", …])")
	fs.StringVar(&c.DataDir, "data", "./shelfsync-data/agent", "directory of the agent's Badger store (outbox, sessions, local stock)")
	fs.StringVar(&c.Warehouse, "warehouse", "", "warehouse ID (required; 1-64 of A-Z a-z 0-9 . _ -)")
	fs.StringVar(&c.Gateway, "gateway", "", "gateway ID, unique in the warehouse (required)")
	fs.StringVar(&c.BrokerURL, "broker", "tcp://127.0.0.1:1884", "MQTT broker URL (tcp://host:port or ssl://host:port); several, comma-separated (ssl://a:8883,ssl://b:8883), are tried in order at every connect and reconnect, so the gateway fails over between server replicas that each run the embedded broker")
	fs.StringVar(&c.Username, "mqtt-username", "", "MQTT username, when the broker uses passwords")
	fs.StringVar(&c.Password, "mqtt-password", "", "MQTT password")
	fs.StringVar(&c.HTTPAddr, "http", "127.0.0.1:8081", "HTTP listen address for status, stock, /healthz and /metrics")
	fs.Var(multi{&c.Devices}, "device", "a scanner: NAME=barcode:SELECTOR[,framing=line|ssi][,feedback=none|ssi|honeywell|datalogic][,suffix=auto|CR|LF|CRLF], or an RFID reader: NAME=rfid:SELECTOR,protocol=uhf18|mercury,role=portal|shelf,location=LOC[,sweep=2s][,window=500ms]; SELECTOR is /dev/PATH or usb:VID:PID[:SERIAL]; repeatable")
	fs.StringVar(&c.ReceivingLoc, "receiving-location", "RECEIVING", "location receipts go to when no LOC: is scanned")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 10*time.Minute, "an open session with no scan for this long is abandoned without committing (0: never)")
	fs.StringVar(&c.Root, "topic-root", protocol.DefaultRoot, "MQTT topic root")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&c.SmallStore, "small-store", true, "tune Badger for a small gateway (tens of MiB of RAM)")
	fs.IntVar(&c.MaxBatchOps, "batch-ops", 256, "most ops per uplink batch")
	fs.DurationVar(&c.Linger, "batch-linger", 5*time.Millisecond, "wait this long for more ops before sending a partial batch")
	fs.DurationVar(&c.AckTimeout, "ack-timeout", 3*time.Second, "the least (and first) time to wait for an ack before asking the server what it lacks; it adapts to the measured ack latency (protocol SPEC.md §6)")
	fs.DurationVar(&c.RetainFor, "retain-for", 7*24*time.Hour, "keep acknowledged ops this long (or --retain-ops of them, whichever is less) so that a server restored from an older backup, or replaced by an empty one, gets them again; older ones are recorded by the server as lost-ops (0: 168h; negative: keep none)")
	fs.Int64Var(&c.RetainOps, "retain-ops", 5_000_000, "keep at most this many acknowledged ops (about 100 bytes of disk each; 0: 5,000,000; negative: keep none)")
	fs.DurationVar(&c.TaskRetention, "task-retention", 7*24*time.Hour, "drop a task the server closed (done, short or cancelled) this long after it closed; the closed pick tasks of an order stay while the order may still be packed here: until this long after its last task closed, and never while one of its tasks is open, a pack of it is in progress or its ship awaits the server (0: 168h; negative: keep every task)")
	fs.DurationVar(&c.ClockMaxOffset, "clock-max-offset", protocol.DefaultMaxOffset, "refuse (do not merge) a server clock more than this ahead of the gateway's (protocol SPEC.md §4); the refusal shows in the status API")
	fs.Int64Var(&c.DiskReserve, "disk-reserve", 64<<20, "bytes kept free on the data disk: below this, scans are refused with a bad beep and \"disk full\" (never a crash) until space returns")
	fs.Int64Var(&c.DiskLow, "disk-low", 512<<20, "warn (log, status API, screen, metric) when the data disk has less free space than this many bytes")
	fs.Int64Var(&c.RetainMinFree, "retain-min-free", 256<<20, "while the data directory's disk has less free space than this many bytes (raised to --disk-low and to twice --disk-reserve), acknowledged ops are not kept (0: 256 MiB; negative: no check)")
	c.Security.register(fs)
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	if err := protocol.ValidateID(c.Warehouse); err != nil {
		errs = append(errs, fmt.Errorf("warehouse: %w", err))
	}
	if err := protocol.ValidateID(c.Gateway); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data: must name a directory"))
	}
	errs = append(errs, c.validateBrokers()...)
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			errs = append(errs, fmt.Errorf("http: %q is not host:port", c.HTTPAddr))
		}
	}
	if c.ReceivingLoc == "" {
		errs = append(errs, errors.New("receiving-location: must not be empty"))
	}
	if c.MaxBatchOps < 1 || c.MaxBatchOps > 4096 {
		errs = append(errs, fmt.Errorf("batch-ops: %d must be 1..4096", c.MaxBatchOps))
	}
	errs = append(errs, flagconf.CheckLog(c.LogLevel, c.LogFormat)...)
	errs = append(errs, c.validateSecurity()...)
	return errors.Join(errs...)
}
