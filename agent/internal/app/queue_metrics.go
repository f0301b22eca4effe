package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

// queueCollector reports, at each scrape, the age of the oldest op the
// server has not acknowledged yet and the state of each device.
type queueCollector struct {
	st       *store.Store
	statuses func() []protocol.DeviceStatus
	oldest   *prometheus.Desc
	device   *prometheus.Desc
}

func registerQueueMetrics(reg prometheus.Registerer, st *store.Store, statuses func() []protocol.DeviceStatus) {
	reg.MustRegister(&queueCollector{
		st: st, statuses: statuses,
		oldest: prometheus.NewDesc("shelfsync_agent_oldest_unacked_seconds",
			"Age of the oldest op committed but not yet acknowledged by the server (0 when the outbox is empty).", nil, nil),
		device: prometheus.NewDesc("shelfsync_agent_device_connected", "1 when the device is connected, by device.", []string{"device"}, nil),
	})
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.oldest; ch <- c.device }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	age := 0.0
	if p, err := c.st.Positions(); err == nil && p.LastSeq > p.Acked {
		if ops, err := c.st.Outbox(p.Acked+1, 1, 1<<20); err == nil && len(ops) > 0 && ops[0].HLC != 0 {
			age = max(time.Since(ops[0].HLC.Time()).Seconds(), 0)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
	for _, d := range c.statuses() {
		ch <- prometheus.MustNewConstMetric(c.device, prometheus.GaugeValue, b2f(d.Connected), d.Name)
	}
}
