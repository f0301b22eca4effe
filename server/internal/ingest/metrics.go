package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest's Prometheus instruments.
type Metrics struct {
	Ops          prometheus.Counter
	Batches      *prometheus.CounterVec
	Rejected     *prometheus.CounterVec
	Quarantined  prometheus.Counter
	ApplyErrors  prometheus.Counter
	ApplyLatency prometheus.Histogram
}

// NewMetrics creates the instruments and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Ops:         prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_ingest_ops_total", Help: "Ops merged into the ledger."}),
		Batches:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_ingest_batches_total", Help: "Op batches by verdict (apply, duplicate, gap)."}, []string{"verdict"}),
		Rejected:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_ingest_rejected_total", Help: "Messages rejected, by reason."}, []string{"reason"}),
		Quarantined: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_ingest_quarantined_ops_total", Help: "Ops kept aside as invalid."}),
		ApplyErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_ingest_apply_errors_total", Help: "Batches whose apply failed (resent by the gateway)."}),
		ApplyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shelfsync_ingest_apply_seconds", Help: "Time to durably apply one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.Ops, m.Batches, m.Rejected, m.Quarantined, m.ApplyErrors, m.ApplyLatency)
	}
	return m
}
