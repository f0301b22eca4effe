package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
)

// acceptErrorWindow: the broker counts as not accepting connections while
// its last accept error is more recent than this. nats-server retries a
// failing accept after at most a second, so a broker that is still out of
// descriptors keeps the error fresh.
const acceptErrorWindow = 5 * time.Second

// Healthy returns nil when the broker accepts connections and its
// JetStream store works, else what is wrong and what to do.
func (b *Broker) Healthy() error {
	if last := b.log.lastAcceptErr.Load(); last != 0 && time.Since(time.Unix(0, last)) < acceptErrorWindow {
		return fmt.Errorf("embedded broker is not accepting MQTT connections (%d accept errors so far; out of file descriptors? raise LimitNOFILE or lower --mqtt-max-conns)",
			b.log.acceptErrors.Load())
	}
	if st := b.ns.Healthz(&server.HealthzOptions{JSServerOnly: true}); st != nil && st.Error != "" {
		return errors.New("embedded broker: " + st.Error)
	}
	return nil
}

// Collector returns the broker's Prometheus metrics (read on each scrape).
func (b *Broker) Collector() prometheus.Collector { return &collector{b: b} }

type collector struct{ b *Broker }

var (
	descConns = prometheus.NewDesc("shelfsync_broker_connections",
		"Clients connected to the embedded broker (gateways, the server's own).", nil, nil)
	descMaxConns = prometheus.NewDesc("shelfsync_broker_max_connections",
		"The embedded broker's connection limit (--mqtt-max-conns).", nil, nil)
	descUnauth = prometheus.NewDesc("shelfsync_broker_connections_unauthenticated_total",
		"Connections the embedded broker accepted that never authenticated: connect timeout, connection limit, failed TLS handshake (counted when they close; includes those still connecting).", nil, nil)
	descAcceptErrs = prometheus.NewDesc("shelfsync_broker_accept_errors_total",
		"Errors accepting MQTT connections (typically: out of file descriptors); the broker retries with back-off.", nil, nil)
	descSlow = prometheus.NewDesc("shelfsync_broker_slow_consumers_total",
		"Clients the embedded broker found too slow to take their messages (QoS 1 messages stay stored for them).", nil, nil)
	descStreamMsgs = prometheus.NewDesc("shelfsync_broker_stream_messages",
		"Messages in the embedded broker's JetStream store (QoS 1 messages in flight, sessions, retained messages).", nil, nil)
	descStreamBytes = prometheus.NewDesc("shelfsync_broker_stream_bytes",
		"Bytes of the embedded broker's JetStream store on disk (under --data).", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descMaxConns, descUnauth, descAcceptErrs, descSlow, descStreamMsgs, descStreamBytes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	ch <- prometheus.MustNewConstMetric(descAcceptErrs, prometheus.CounterValue, float64(b.log.acceptErrors.Load()))
	ch <- prometheus.MustNewConstMetric(descMaxConns, prometheus.GaugeValue, float64(b.opts.MaxConn))
	if v, err := b.ns.Varz(nil); err == nil {
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(v.Connections))
		ch <- prometheus.MustNewConstMetric(descSlow, prometheus.CounterValue, float64(v.SlowConsumers))
		unauth := int64(v.TotalConnections) - b.auth.checked.Load()
		ch <- prometheus.MustNewConstMetric(descUnauth, prometheus.CounterValue, float64(max(0, unauth)))
	}
	if js, err := b.ns.Jsz(nil); err == nil {
		ch <- prometheus.MustNewConstMetric(descStreamMsgs, prometheus.GaugeValue, float64(js.Messages))
		ch <- prometheus.MustNewConstMetric(descStreamBytes, prometheus.GaugeValue, float64(js.Store))
	}
}
