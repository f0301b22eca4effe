package config

import (
	"flag"
	"fmt"
	"strings"
	"time"
)

// ScaleOut is the part of the configuration that lets several server
// replicas share one PostgreSQL database and one broker (deploy/SCALE-OUT.md).
type ScaleOut struct {
	// Store selects the backend: empty or "badger" is the embedded Badger
	// store under DataDir; a postgres:// (or postgresql://) URL is
	// PostgreSQL.
	Store string
	// ShareGroup, when set, makes the ingest subscribe to gateways' topics
	// through the MQTT shared subscription $share/{ShareGroup}/…, so that
	// the replicas of one group split the messages between them.
	ShareGroup string
	// Partition is how replicas sharing a PostgreSQL store and an
	// external broker divide the work: "warehouse" (the default) gives
	// each warehouse to one replica at a time through a lease in
	// PostgreSQL — every replica subscribes to every gateway and applies,
	// acknowledges and sends the downstream of the gateways of the
	// warehouses it holds; "none" lets every replica handle every message
	// it receives. Empty means "warehouse". With ShareGroup the broker divides the gateways and
	// Partition is not used. LeaseTTL is
	// how long a crashed replica's warehouses wait for another.
	Partition string
	LeaseTTL  time.Duration
	// NoOpsDeflate stops announcing the ops-deflate feature (compressed op
	// batches, protocol SPEC.md §5.1) to gateways. Set it on every replica
	// while a rolling upgrade still runs replicas that predate it;
	// compressed batches are accepted either way.
	NoOpsDeflate bool
}

func (c *ScaleOut) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Store, "store", "", "store backend: empty or \"badger\" for the embedded Badger store under --data, or a PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=require) shared by replicas")
	fs.StringVar(&c.ShareGroup, "share-group", "", "MQTT shared-subscription group of the replicas (subscribe as $share/GROUP/…): for brokers that keep a publisher on one subscriber (EMQX hash_clientid); empty: every server gets every message")
	fs.StringVar(&c.Partition, "partition", "warehouse", "how replicas of a PostgreSQL store on an external broker or clustered embedded brokers divide the work: \"warehouse\" (each warehouse's gateways applied by one replica at a time, through a lease in PostgreSQL; on an external broker every replica subscribes to every gateway and drops what it does not hold, on clustered embedded brokers each warehouse has its own consumer, read only by the lease holder) or \"none\" (every replica handles what it receives); off with --share-group, where the broker divides the gateways")
	fs.BoolVar(&c.NoOpsDeflate, "no-ops-deflate", false, "do not announce ops-deflate (DEFLATE-compressed op batches, ~9 instead of ~71 bytes per op) to gateways, so they send plain batches: set on every replica while a rolling upgrade still runs replicas older than this feature (they would refuse compressed batches, costing a resend); compressed batches are accepted either way")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", 10*time.Second, "with --partition warehouse: how long a warehouse lease outlives its replica's last renewal (a crashed replica's warehouses move to another after this)")
}

// PartitionWarehouses reports whether this server takes part in the
// warehouse partition: a PostgreSQL store shared through an external
// broker without a shared subscription (there the broker divides the
// gateways, and a replica does not see every message it would need to
// hold a warehouse's lease), or through clustered embedded brokers (each
// warehouse has its own consumer there, read by the lease holder), with
// Partition "warehouse". Embedded brokers that are not clustered each
// hear only their own gateways: there every replica applies what it
// hears.
func (c *Config) PartitionWarehouses() bool {
	return (c.Partition == PartitionWarehouse || c.Partition == "") && c.Postgres() && c.ShareGroup == "" &&
		(c.BrokerURL != "" || c.ClusterListen != "")
}

// Partition values.
const (
	PartitionWarehouse = "warehouse"
	PartitionNone      = "none"
)

// Postgres reports whether the store is PostgreSQL.
func (c *ScaleOut) Postgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

func (c *ScaleOut) validate(external bool) []error {
	var errs []error
	if c.Store != "" && c.Store != "badger" && !c.Postgres() {
		errs = append(errs, fmt.Errorf("store: %q must be empty, \"badger\" or a postgres:// URL", redactDSN(c.Store)))
	}
	switch c.Partition {
	case PartitionWarehouse, "": // "": the default
		if c.LeaseTTL != 0 && c.LeaseTTL < time.Second { // 0: the default
			errs = append(errs, fmt.Errorf("lease-ttl: %s must be at least 1s", c.LeaseTTL))
		}
	case PartitionNone:
	default:
		errs = append(errs, fmt.Errorf("partition: %q must be %q or %q", c.Partition, PartitionWarehouse, PartitionNone))
	}
	if c.ShareGroup != "" {
		if strings.ContainsAny(c.ShareGroup, "/+#") {
			errs = append(errs, fmt.Errorf("share-group: %q must not contain '/', '+' or '#'", c.ShareGroup))
		}
		if !external {
			errs = append(errs, fmt.Errorf("share-group: needs an external broker (--broker); the embedded broker serves one server"))
		}
		if !c.Postgres() {
			errs = append(errs, fmt.Errorf("share-group: replicas must share a PostgreSQL store (--store postgres://…); a Badger store is one server's"))
		}
	}
	return errs
}

// redactDSN hides a password in a URL for messages.
func redactDSN(s string) string {
	if at := strings.LastIndex(s, "@"); at > 0 {
		if scheme := strings.Index(s, "://"); scheme >= 0 && scheme < at {
			if colon := strings.Index(s[scheme+3:at], ":"); colon >= 0 {
				return s[:scheme+3+colon] + ":***" + s[at:]
			}
		}
	}
	return s
}
