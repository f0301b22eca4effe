// Package config is the server's configuration: the Config struct, the
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
)

// Config is the server's whole configuration.
type Config struct {
	File      string
	DataDir   string
	HTTPAddr  string
	MQTTAddr  string
	BrokerURL string
	Root      string
	LogLevel  string
	LogFormat string
	Workers   int
	Username  string
	Password  string
	Shutdown  time.Duration
	Security  // TLS, identities, API tokens, ingest limits (security.go)
	ScaleOut  // store backend and shared subscription (scaleout.go)
	Bounds    // HTTP limits, upload size, clock offset (bounds.go)
	Broker    // the embedded broker's connection limits (broker.go)
	Alerts    // alert delays and thresholds (alerts.go)
	Expiry    // expiry sweep period and test clock (expiry.go)
}

// Register defines every flag of `shelfsync-server run` on fs.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.File, "config", "", "TOML config file; keys are the flag names")
	fs.StringVar(&c.DataDir, "data", "./shelfsync-data/server", "directory of the Badger store (created if missing)")
	fs.StringVar(&c.HTTPAddr, "http", "127.0.0.1:8080", "HTTP listen address for the API, /healthz and /metrics")
	fs.StringVar(&c.MQTTAddr, "mqtt", "127.0.0.1:1884", "listen address of the embedded MQTT broker (ignored with --broker); 1884 so a local Mosquitto on 1883 is left alone")
	fs.StringVar(&c.BrokerURL, "broker", "", "external broker URL (tcp://host:1883, ssl://host:8883); empty runs the embedded broker")
	fs.StringVar(&c.Root, "topic-root", "shelfsync/v1", "MQTT topic root")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.IntVar(&c.Workers, "workers", 4, "parallel batch appliers (a gateway always uses the same one)")
	fs.StringVar(&c.Username, "mqtt-username", "", "username for an external broker")
	fs.StringVar(&c.Password, "mqtt-password", "", "password for an external broker")
	fs.DurationVar(&c.Shutdown, "shutdown-timeout", 10*time.Second, "how long to wait for in-flight work on stop")
	c.Security.register(fs)
	c.ScaleOut.register(fs)
	c.Bounds.register(fs)
	c.Broker.register(fs)
	c.Alerts.register(fs)
	c.Expiry.register(fs)
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data: must name a directory"))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http: %q is not host:port", c.HTTPAddr))
	}
	if c.BrokerURL == "" {
		if _, _, err := net.SplitHostPort(c.MQTTAddr); err != nil {
			errs = append(errs, fmt.Errorf("mqtt: %q is not host:port", c.MQTTAddr))
		}
	} else if !strings.Contains(c.BrokerURL, "://") {
		errs = append(errs, fmt.Errorf("broker: %q needs a scheme, e.g. tcp://host:1883", c.BrokerURL))
	}
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("workers: %d must be 1..256", c.Workers))
	}
	errs = append(errs, flagconf.CheckLog(c.LogLevel, c.LogFormat)...)
	errs = append(errs, c.Security.validate(c.BrokerURL != "")...)
	errs = append(errs, c.ScaleOut.validate(c.BrokerURL != "")...)
	errs = append(errs, c.Bounds.validate()...)
	errs = append(errs, c.Broker.validate()...)
	errs = append(errs, c.Alerts.validate()...)
	errs = append(errs, c.Expiry.validate()...)
	if c.ClusterListen != "" && (c.BrokerURL != "" || !c.Postgres()) {
		errs = append(errs, fmt.Errorf("cluster-listen: clusters the embedded broker of replicas that share a PostgreSQL store: needs --store postgres://… and no --broker"))
	}
	return errors.Join(errs...)
}
