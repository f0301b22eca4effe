package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
)

// Metrics are the ingest's Prometheus instruments.
type Metrics struct {
	Ops          prometheus.Counter
	Batches      *prometheus.CounterVec
	Rejected     *prometheus.CounterVec
	Quarantined  prometheus.Counter
	ApplyErrors  prometheus.Counter
	ApplyLatency prometheus.Histogram
	// DroppedDuplicates counts queued batches at or below what the worker
	// had applied, answered without joining a transaction (they also
	// count in Batches as "duplicate").
	DroppedDuplicates prometheus.Counter
	// WireBatches and WireBytes count the op batches received and their
	// bytes on the wire by form: "ops" (plain) or "ops-deflate".
	WireBatches *prometheus.CounterVec
	WireBytes   *prometheus.CounterVec
	clock       clockMetrics    // clock.go
	recovery    recoveryMetrics // recovery.go
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
		DroppedDuplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_ingest_duplicates_dropped_total",
			Help: "Queued op batches already applied (resends), acknowledged with the watermark without being applied again."}),
		WireBatches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_ingest_wire_batches_total", Help: "Op batches received, by wire form (ops, ops-deflate)."}, []string{"form"}),
		WireBytes:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_ingest_wire_bytes_total", Help: "Bytes of the op batches received as sent, by wire form (ops, ops-deflate)."}, []string{"form"}),
	}
	m.clock = newClockMetrics(reg)
	m.recovery = newRecoveryMetrics(reg)
	if reg != nil {
		reg.MustRegister(m.Ops, m.Batches, m.Rejected, m.Quarantined, m.ApplyErrors, m.ApplyLatency, m.DroppedDuplicates, m.WireBatches, m.WireBytes)
	}
	return m
}

// countForm counts a received batch of n wire bytes under its form.
func (m *Metrics) countForm(b *protocol.OpBatch, n int) {
	form := protocol.TypeOps
	if b.Deflate {
		form = protocol.TypeOpsDeflate
	}
	m.WireBatches.WithLabelValues(form.String()).Inc()
	m.WireBytes.WithLabelValues(form.String()).Add(float64(n))
}
