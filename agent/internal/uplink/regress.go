package uplink

import (
	"fmt"
	"strconv"
	"time"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

// RegressionInfo describes a server state that went back in time (SPEC.md
// §6.1), for the status API.
type RegressionInfo struct {
	At          time.Time `json:"at"`
	EpochBefore string    `json:"epoch_before"`
	Epoch       string    `json:"epoch"`
	AckedBefore uint64    `json:"acked_before"`
	ServerWM    uint64    `json:"server_wm"`
	// ResendFrom is the first seq sent again from the retention.
	ResendFrom uint64 `json:"resend_from"`
	// Lost, when set, is the range beyond the retention: the server
	// records it as a lost-ops conflict.
	Lost *SeqRange `json:"lost,omitempty"`
}

// SeqRange is an inclusive range of seqs.
type SeqRange struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// regress handles an ack showing that the server's state went back in
// time: another identity (epoch) than the one last seen, or the same
// identity with a watermark below what it had acknowledged. The store
// takes the server's watermark as acknowledged, drops its downstream
// position and server view and rebuilds its view from its own held ops;
// the window resends from wm+1; a hello states the oldest seq held (so the
// server records what retention no longer holds as lost-ops) and restarts
// the downstream from the beginning.
func (u *Uplink) regress(s *protocol.Window, p store.Positions, a *protocol.Ack) {
	start := time.Now()
	r, err := u.st.Regress(a.WM, a.Epoch)
	if err != nil {
		u.setError("the server's state went back in time (epoch %s, watermark %d) but this gateway could not reset to it: %v; it will try again at the next ack", a.Epoch, a.WM, err)
		return
	}
	info := &RegressionInfo{At: time.Now().UTC(), EpochBefore: r.EpochBefore, Epoch: r.Epoch, AckedBefore: r.AckedBefore, ServerWM: r.WM, ResendFrom: max(r.WM+1, r.First)}
	attrs := []any{"epoch_before", r.EpochBefore, "epoch", r.Epoch, "acked_before", r.AckedBefore, "server_wm", r.WM,
		"resend_from", info.ResendFrom, "last_seq", p.LastSeq, "view_rebuilt_from_ops", r.Replayed, "took", time.Since(start).Round(time.Millisecond)}
	if from, to, ok := r.Lost(); ok {
		info.Lost = &SeqRange{From: from, To: to}
		u.log.Error("server state went back in time beyond this gateway's retention: seqs "+rangeText(from, to)+" are no longer held and will be recorded by the server as lost-ops (count the zone); the rest is resent",
			append(attrs, "lost_from", from, "lost_to", to)...)
	} else {
		u.log.Warn("server state went back in time (restored from a backup, or replaced); resending the ops it lacks from retention and rebuilding the downstream", attrs...)
	}
	u.bump(func(st *State) { st.Regressions++; st.LastRegression = info; st.Resends++ })
	u.setLost(info.Lost)
	s.Reset(r.WM, time.Now())
	u.lostAsked = time.Now() // the hello below asks
	u.hello(0)
}

// setLost records the range the server is asked to record as lost-ops
// (nil: none pending).
func (u *Uplink) setLost(r *SeqRange) {
	u.lostPending = r != nil
	if r == nil {
		u.lostAsked = time.Time{}
	}
	u.bump(func(st *State) { st.Lost = r })
}

// askLost runs when the server expects seq next but the oldest seq held is
// first: a hello (at most once per ack timeout) states first_seq, and a
// server that implements lost-ops records next..first-1 and acknowledges
// first-1. An older server keeps answering with a gap: the range stays in
// the status API until someone reconciles it.
func (u *Uplink) askLost(next, first uint64) {
	if !u.lostAsked.IsZero() && time.Since(u.lostAsked) < u.cfg.AckTimeout {
		return
	}
	if u.lostAsked.IsZero() {
		u.log.Error("the server expects seq "+rangeText(next, next)+" but this gateway's retention starts at "+rangeText(first, first)+": asking the server to record the range as lost-ops",
			"lost_from", next, "lost_to", first-1)
	}
	u.setLost(&SeqRange{From: next, To: first - 1})
	u.lostAsked = time.Now()
	u.hello(0)
}

func rangeText(from, to uint64) string {
	if from == to {
		return strconv.FormatUint(from, 10)
	}
	return fmt.Sprintf("%d..%d", from, to)
}
