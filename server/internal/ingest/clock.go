package ingest

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
)

// Clock bounds (protocol SPEC.md §4): a gateway's hello or batch whose hlc
// runs more than the maximum offset ahead of this server's wall clock is
// refused with an error ack, counted and alerted (Config.OnClock), and its
// clock is never merged, so the server's acks cannot spread it to the
// other gateways. Each accepted message's hlc also measures the gateway's
// skew.

// clockMetrics are the clock instruments.
type clockMetrics struct {
	Refused *prometheus.CounterVec
	Skew    *prometheus.GaugeVec
}

func newClockMetrics(reg prometheus.Registerer) clockMetrics {
	m := clockMetrics{
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_ingest_clock_refused_total",
			Help: "Hellos and batches refused because the gateway's clock ran more than clock-max-offset ahead of the server's, by message."}, []string{"message"}),
		Skew: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shelfsync_gateway_clock_skew_seconds",
			Help: "A gateway's clock minus the server's, measured on its latest hello or batch (transit time included)."}, []string{"warehouse", "gateway"}),
	}
	if reg != nil {
		reg.MustRegister(m.Refused, m.Skew)
	}
	return m
}

// clockState remembers which gateways are refused now, so that
// Config.OnClock hears of each change once.
type clockState struct {
	mu      sync.Mutex
	refused map[string]bool
}

// checkClock measures and merges a gateway's clock; it reports false (and
// has answered with an error ack) when the clock is refused.
func (in *Ingest) checkClock(ctx context.Context, log *slog.Logger, wh, gw string, kind protocol.MsgType, h protocol.HLC) bool {
	wall := in.clock.Wall()
	in.m.clock.Skew.WithLabelValues(wh, gw).Set(float64(h.Millis()-wall.UnixMilli()) / 1000)
	err := in.clock.Update(h)
	key := gatewayKey(in.topics.Up(wh, gw))
	in.clocks.mu.Lock()
	was := in.clocks.refused[key]
	if err != nil {
		in.clocks.refused[key] = true
	} else {
		delete(in.clocks.refused, key)
	}
	in.clocks.mu.Unlock()
	if (err != nil) != was && in.cfg.OnClock != nil {
		in.cfg.OnClock(wh, gw, err)
	}
	if err == nil {
		return true
	}
	in.m.clock.Refused.WithLabelValues(kind.String()).Inc()
	if in.lim.shouldLog(key, "clock") {
		log.Warn("gateway clock refused; its message is not applied (logged once per 10 s)", "message", kind.String(), "err", err)
	}
	if in.lim.allowErrorAck(key) {
		in.ack(ctx, wh, gw, err.Error())
	}
	return false
}
