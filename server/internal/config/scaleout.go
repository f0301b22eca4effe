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
	// GatewayLeases makes the replicas partition the gateways through
	// leases in PostgreSQL: every replica subscribes to every gateway, and
	// handles (and sends the downstream of) only those it holds the lease
	// of. For brokers whose shared subscriptions are round robin
	// (Mosquitto); LeaseTTL is how long a crashed replica's gateways wait.
	GatewayLeases bool
	LeaseTTL      time.Duration
	// NoOpsDeflate stops announcing the ops-deflate feature (compressed op
	// batches, protocol SPEC.md §5.1) to gateways. Set it on every replica
	// while a rolling upgrade still runs replicas that predate it;
	// compressed batches are accepted either way.
	NoOpsDeflate bool
}

func (c *ScaleOut) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Store, "store", "", "store backend: empty or \"badger\" for the embedded Badger store under --data, or a PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=require) shared by replicas")
	fs.StringVar(&c.ShareGroup, "share-group", "", "MQTT shared-subscription group of the replicas (subscribe as $share/GROUP/…): for brokers that keep a publisher on one subscriber (EMQX hash_clientid); empty: every server gets every message")
	fs.BoolVar(&c.GatewayLeases, "gateway-leases", false, "partition gateways between the replicas of a PostgreSQL store with leases: every replica subscribes to every gateway and handles those it holds (for Mosquitto, whose shared subscriptions are round robin)")
	fs.BoolVar(&c.NoOpsDeflate, "no-ops-deflate", false, "do not announce ops-deflate (DEFLATE-compressed op batches, ~9 instead of ~71 bytes per op) to gateways, so they send plain batches: set on every replica while a rolling upgrade still runs replicas older than this feature (they would refuse compressed batches, costing a resend); compressed batches are accepted either way")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", 10*time.Second, "with gateway-leases: how long a gateway lease outlives its replica's last renewal (a crashed replica's gateways move after this)")
}

// Postgres reports whether the store is PostgreSQL.
func (c *ScaleOut) Postgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

func (c *ScaleOut) validate(external bool) []error {
	var errs []error
	if c.Store != "" && c.Store != "badger" && !c.Postgres() {
		errs = append(errs, fmt.Errorf("store: %q must be empty, \"badger\" or a postgres:// URL", redactDSN(c.Store)))
	}
	if c.GatewayLeases {
		if !external || !c.Postgres() {
			errs = append(errs, fmt.Errorf("gateway-leases: needs an external broker (--broker) and a PostgreSQL store (--store postgres://…)"))
		}
		if c.ShareGroup != "" {
			errs = append(errs, fmt.Errorf("gateway-leases: do not combine with share-group: a replica must see every gateway's messages to hold its lease"))
		}
		if c.LeaseTTL < time.Second {
			errs = append(errs, fmt.Errorf("lease-ttl: %s must be at least 1s", c.LeaseTTL))
		}
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
