package events

import "github.com/prometheus/client_golang/prometheus"

// metrics are the bus's Prometheus figures.
type metrics struct {
	reg       prometheus.Registerer
	published prometheus.Counter
	dropped   *prometheus.CounterVec
	resyncs   *prometheus.CounterVec
	panics    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	sub := []string{"subscriber"}
	m := &metrics{
		reg:       reg,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_events_published_total", Help: "Post-commit events published."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_events_dropped_total",
			Help: "Events a subscriber lost because its queue was full (it then resyncs from the store)."}, sub),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_events_resyncs_total",
			Help: "Times a subscriber that lost events re-read its view from the store."}, sub),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_events_handler_panics_total",
			Help: "Events a subscriber's handler panicked on (skipped)."}, sub),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.dropped, m.resyncs, m.panics)
	}
	return m
}

// register adds a subscriber's queue gauge and its zero counters.
func (m *metrics) register(s *sub) {
	m.dropped.WithLabelValues(s.name)
	m.resyncs.WithLabelValues(s.name)
	m.panics.WithLabelValues(s.name)
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_events_queued",
		Help: "Records (events, ops, changes, conflicts) waiting for a subscriber; bounded by its queue.", ConstLabels: prometheus.Labels{"subscriber": s.name}},
		func() float64 { return float64(s.queuedWeight()) }))
}
