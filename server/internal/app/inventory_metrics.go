package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// stateCollector reports, at each scrape, figures read from the store:
// per-gateway lag and state, open conflicts by kind, and quarantined ops
// waiting for a decision.
type stateCollector struct {
	st                                     store.Store
	lagOps, lagSec, online, outbox, appAge *prometheus.Desc
	conflicts, quarantined                 *prometheus.Desc
}

func registerInventoryMetrics(reg prometheus.Registerer, st store.Store) {
	if reg == nil {
		return
	}
	gw := []string{"warehouse", "gateway"}
	reg.MustRegister(&stateCollector{
		st:          st,
		lagOps:      prometheus.NewDesc("shelfsync_gateway_lag_ops", "Ops a gateway reported that the server has not applied yet.", gw, nil),
		lagSec:      prometheus.NewDesc("shelfsync_gateway_lag_seconds", "Seconds since the server last applied a batch of a gateway that is behind (0 when caught up).", gw, nil),
		online:      prometheus.NewDesc("shelfsync_gateway_online", "1 when the gateway's last status said online.", gw, nil),
		outbox:      prometheus.NewDesc("shelfsync_gateway_outbox_depth", "Outbox depth the gateway last reported.", gw, nil),
		appAge:      prometheus.NewDesc("shelfsync_gateway_last_seen_seconds", "Seconds since the gateway was last heard from.", gw, nil),
		conflicts:   prometheus.NewDesc("shelfsync_conflicts_open", "Open conflicts by kind.", []string{"kind"}, nil),
		quarantined: prometheus.NewDesc("shelfsync_quarantined_ops", "Quarantined ops waiting to be re-applied or rejected, by warehouse.", []string{"warehouse"}, nil),
	})
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lagOps, c.lagSec, c.online, c.outbox, c.appAge, c.conflicts, c.quarantined} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	if gs, err := c.st.Gateways(ctx, ""); err == nil {
		for _, g := range gs {
			var lag uint64
			var lagSec float64
			if g.ReportedSeq > g.WM {
				lag = g.ReportedSeq - g.WM
				since := g.LastApplied
				if since == 0 {
					since = g.LastSeen
				}
				if since > 0 {
					lagSec = now.Sub(time.UnixMilli(since)).Seconds()
				}
			}
			online := 0.0
			if g.Online {
				online = 1
			}
			ch <- prometheus.MustNewConstMetric(c.lagOps, prometheus.GaugeValue, float64(lag), g.Warehouse, g.Gateway)
			ch <- prometheus.MustNewConstMetric(c.lagSec, prometheus.GaugeValue, lagSec, g.Warehouse, g.Gateway)
			ch <- prometheus.MustNewConstMetric(c.online, prometheus.GaugeValue, online, g.Warehouse, g.Gateway)
			ch <- prometheus.MustNewConstMetric(c.outbox, prometheus.GaugeValue, float64(g.OutboxDepth), g.Warehouse, g.Gateway)
			if g.LastSeen > 0 {
				ch <- prometheus.MustNewConstMetric(c.appAge, prometheus.GaugeValue, now.Sub(time.UnixMilli(g.LastSeen)).Seconds(), g.Warehouse, g.Gateway)
			}
		}
	}
	counts := map[conflicts.Kind]int{}
	for _, k := range []conflicts.Kind{conflicts.KindNegativeStock, conflicts.KindOverPick, conflicts.KindCountRace, conflicts.KindVariance,
		conflicts.KindReceiptDiscrepancy, conflicts.KindQuarantinedOp, conflicts.KindOversell, conflicts.KindLostOps} {
		counts[k] = 0
	}
	if cs, err := c.st.Conflicts(ctx, conflicts.Query{Status: conflicts.StatusOpen}); err == nil {
		for _, cf := range cs {
			counts[cf.Kind]++
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.conflicts, prometheus.GaugeValue, float64(n), string(k))
		}
	}
	if qs, err := c.st.Quarantined(ctx, ""); err == nil {
		per := map[string]int{}
		for _, q := range qs {
			if q.Status == "" {
				per[q.Warehouse] += 1
			} else if _, ok := per[q.Warehouse]; !ok {
				per[q.Warehouse] = 0
			}
		}
		for wh, n := range per {
			ch <- prometheus.MustNewConstMetric(c.quarantined, prometheus.GaugeValue, float64(n), wh)
		}
	}
}
