package ingest

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// recoveryMetrics count what a hello reveals about a server state that
// went back in time (protocol SPEC.md §6.1).
type recoveryMetrics struct {
	LostOps     prometheus.Counter
	StateBehind prometheus.Counter
}

func newRecoveryMetrics(reg prometheus.Registerer) recoveryMetrics {
	m := recoveryMetrics{
		LostOps: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_ingest_lost_ops_total",
			Help: "Ops recorded as lost-ops: a gateway's hello said they are beyond its retention, and this server's state lacked them (restored or new)."}),
		StateBehind: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_ingest_state_behind_gateway_total",
			Help: "Hellos under this server's own epoch reporting acknowledgements beyond its watermark: the state went back in time without a new identity (deploy/RECOVERY.md: roll it)."}),
	}
	if reg != nil {
		reg.MustRegister(m.LostOps, m.StateBehind)
	}
	return m
}

// recover handles what a hello says about this server's state before it
// is answered: a gateway that was acknowledged beyond the watermark, or
// sent downstream beyond the log's head, under this very epoch shows that
// the state went back in time without a new identity (logged, counted); a first_seq beyond the watermark + 1 names
// ops the gateway no longer holds, which are recorded as lost-ops, moving
// the watermark past them (their conflict's alert is raised through the
// post-commit event, and OnLostOps issues the count tasks).
func (in *Ingest) recover(ctx context.Context, log *slog.Logger, wh, gw string, h *protocol.Hello) {
	if h.FirstSeq == 0 && h.Epoch != in.st.Epoch() {
		return
	}
	wm, err := in.st.Watermark(ctx, wh, gw)
	if err != nil {
		log.Error("read watermark", "err", err)
		return
	}
	if h.Epoch == in.st.Epoch() {
		head := h.DownSeq // a downstream beyond the log's head: the log went back
		if h.DownSeq > 0 {
			if r, err := in.st.DownFrom(ctx, wh, gw, h.DownSeq, 1); err == nil {
				head = r.Head
			}
		}
		if h.AckedSeq > wm || h.DownSeq > head {
			in.m.recovery.StateBehind.Inc()
			log.Error("this server's state went back in time without a new identity: the gateway was acknowledged, or sent downstream, beyond this state under this epoch; stop the server(s) and roll the identity (deploy/RECOVERY.md) so every gateway resynchronises",
				"acked_seq", h.AckedSeq, "wm", wm, "down_seq", h.DownSeq, "down_head", head, "epoch", h.Epoch)
		}
	}
	if h.FirstSeq <= wm+1 {
		return
	}
	if h.FirstSeq > h.LastSeq+1 {
		log.Warn("hello with first_seq beyond last_seq+1 ignored", "first_seq", h.FirstSeq, "last_seq", h.LastSeq)
		return
	}
	rec, ok := in.st.(store.LostOpsRecorder)
	if !ok {
		return
	}
	var res store.Result
	for attempt := 0; ; attempt++ {
		res, err = rec.RecordLostOps(ctx, wh, gw, h.FirstSeq)
		if !errors.Is(err, store.ErrConflict) || attempt >= 20 {
			break
		}
	}
	if err != nil {
		log.Error("record lost-ops failed; the gateway's next hello asks again", "first_seq", h.FirstSeq, "wm", wm, "err", err)
		return
	}
	if res.Verdict != protocol.Apply {
		return // another hello got there first
	}
	from, to := wm+1, h.FirstSeq-1
	in.m.recovery.LostOps.Add(float64(to - from + 1))
	log.Error("ops beyond the gateway's retention recorded as lost-ops (this server's state was restored or replaced); replication resumes; count the gateway's zone",
		"lost_from", from, "lost_to", to, "wm", res.WM)
	if in.cfg.Events != nil {
		in.cfg.Events.Publish(events.Event{Batches: []events.Batch{{Warehouse: wh, Gateway: gw, WM: res.WM, Conflicts: res.Conflicts}}})
	}
	if in.cfg.OnLostOps != nil {
		in.cfg.OnLostOps(wh, gw, from, to)
	}
}
