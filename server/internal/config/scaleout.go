package config

import (
	"flag"
	"fmt"
	"strings"
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
}

func (c *ScaleOut) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Store, "store", "", "store backend: empty or \"badger\" for the embedded Badger store under --data, or a PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=require) shared by replicas")
	fs.StringVar(&c.ShareGroup, "share-group", "", "MQTT shared-subscription group of the replicas (subscribe as $share/GROUP/…); empty: every server gets every message (one server)")
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
