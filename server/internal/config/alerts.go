package config

import (
	"flag"
	"fmt"
	"time"

	"github.com/shelfsync/shelfsync/server/internal/alerts"
)

// Alerts holds the delays and thresholds of the server's alerts
// (docs/DESIGN.md, "Exceptions"). Zero values take the defaults below.
type Alerts struct {
	// AlertOfflineAfter is how long a gateway may stay offline before a
	// gateway-offline alert; the alert clears when it is back.
	AlertOfflineAfter time.Duration
	// AlertBacklogOps is the backlog (ops a gateway holds that the server
	// has not applied) that always alerts; a backlog above a tenth of it
	// that grew at each of the last AlertBacklogChecks checks alerts too.
	// The alert clears at a tenth of it or less.
	AlertBacklogOps    uint64
	AlertBacklogChecks int
	// AlertCheckEvery is how often gateways are checked and open conflicts
	// swept for a missed notification.
	AlertCheckEvery time.Duration
}

func (a *Alerts) register(fs *flag.FlagSet) {
	fs.DurationVar(&a.AlertOfflineAfter, "alert-offline-after", alerts.DefaultOfflineAfter, "a gateway offline this long raises a gateway-offline alert, cleared when it is back")
	fs.Uint64Var(&a.AlertBacklogOps, "alert-backlog-ops", alerts.DefaultBacklogOps, "a gateway with this many ops not yet applied raises a gateway-backlog alert (also a tenth of it growing at --alert-backlog-checks checks in a row); cleared at a tenth of it or less")
	fs.IntVar(&a.AlertBacklogChecks, "alert-backlog-checks", alerts.DefaultBacklogChecks, "checks in a row a backlog above a tenth of --alert-backlog-ops must grow to alert")
	fs.DurationVar(&a.AlertCheckEvery, "alert-check-every", alerts.DefaultCheckEvery, "how often gateways are checked for the offline and backlog alerts (and open conflicts swept for a missed notification)")
}

func (a *Alerts) validate() []error {
	var errs []error
	if a.AlertOfflineAfter < 0 || a.AlertOfflineAfter > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("alert-offline-after: %s must be between 0 (default) and 168h", a.AlertOfflineAfter))
	}
	if a.AlertBacklogChecks < 0 || a.AlertBacklogChecks > 1000 {
		errs = append(errs, fmt.Errorf("alert-backlog-checks: %d must be 0 (default) to 1000", a.AlertBacklogChecks))
	}
	if a.AlertCheckEvery < 0 || (a.AlertCheckEvery > 0 && a.AlertCheckEvery < 100*time.Millisecond) || a.AlertCheckEvery > time.Hour {
		errs = append(errs, fmt.Errorf("alert-check-every: %s must be between 100ms and 1h (0: default)", a.AlertCheckEvery))
	}
	return errs
}

// AlertConfig returns the alert settings as the alerts service takes them.
func (a *Alerts) AlertConfig() alerts.Config {
	return alerts.Config{OfflineAfter: a.AlertOfflineAfter, BacklogOps: a.AlertBacklogOps, BacklogChecks: a.AlertBacklogChecks, CheckEvery: a.AlertCheckEvery}
}
