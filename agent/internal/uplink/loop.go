package uplink

import (
	"context"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
)

func (u *Uplink) loop(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	statusTick := time.NewTicker(u.cfg.StatusEvery)
	defer statusTick.Stop()
	s := protocol.Window{Size: u.cfg.Window, Timeout: u.cfg.AckTimeout}
	var lingerC <-chan time.Time
	p, err := u.st.Positions()
	if err != nil {
		return err
	}
	s.Reset(p.Acked, time.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-u.connected:
			u.setFeatures(0) // plain batches until this connection's server announces more
			s.Probes = false
			p, _ := u.st.Positions()
			s.Reset(p.Acked, time.Now()) // resend all unacked after a reconnect
			u.hello(0)
			// Send after the hello's answer: it states the server's
			// watermark (what it already has is not sent again) and the
			// features (compressed batches from the first one on). A
			// server that does not answer within the timeout gets the
			// batches anyway.
			u.greeted = time.Now()
			u.publishStatus()
		case msg := <-u.inbox:
			u.turn(&s, coalesce(msg, u.inbox))
		case <-u.st.NoticeNotify():
			u.publishStatus() // notices ride the status (SPEC.md §8)
		case <-u.st.Notify():
			if lingerC == nil {
				lingerC = time.After(u.cfg.Linger)
			}
		case <-lingerC:
			lingerC = nil
			u.send(&s, true)
		case <-statusTick.C:
			u.publishStatus()
		case now := <-tick.C:
			if !u.greeted.IsZero() && now.Sub(u.greeted) > s.RTO() {
				u.greeted = time.Time{}
			}
			if expired, rewound := s.Expire(now); expired {
				u.bump(func(st *State) { st.Timeouts++ })
				if rewound {
					u.log.Info("no ack in time; resending from ack+1 (if this persists with the broker connected, check that the broker's ACL accepts this identity on this topic)",
						"acked", s.Acked, "rto", s.RTO(), "topic", u.topics.Up(u.cfg.Warehouse, u.cfg.Gateway), "identity", u.cfg.identity())
					u.bump(func(st *State) { st.Resends++ })
					u.hello(0)
				} else {
					// Ask the server what it has; its answer says whether
					// anything sent before is missing (onAck).
					u.log.Debug("no ack in time; asking the server for its watermark", "acked", s.Acked, "next", s.Next, "rto", s.RTO(), "srtt", s.SRTT())
					u.hello(s.Ask(now))
				}
			}
			if lingerC == nil {
				u.send(&s, true)
			}
		}
	}
}

// turn handles the messages queued at once. Applying a downstream batch
// is the agent's slowest step in a catch-up (a transaction over the keys
// it changes), so when nothing in the turn can change the server identity
// or move the acknowledgement back, the acks are handled first and the
// batches they make room for are sent before the downstream is applied:
// the server then has work while the agent applies. Acks record the
// upstream position and downstream batches the server's values, which do
// not depend on each other; only an identity change or a regression
// (handled in arrival order) touches both.
func (u *Uplink) turn(s *protocol.Window, msgs []protocol.Message) {
	if !u.acksFirst(msgs) {
		for _, m := range msgs {
			u.handle(s, m)
		}
		u.send(s, false)
		return
	}
	var downs []protocol.Message
	for _, m := range msgs {
		if _, ok := m.(*protocol.DownBatch); ok {
			downs = append(downs, m)
			continue
		}
		u.handle(s, m)
	}
	u.send(s, false)
	if len(downs) == 0 {
		return
	}
	for _, m := range downs {
		u.handle(s, m)
	}
	u.send(s, false)
}

// acksFirst reports whether msgs hold downstream batches and acks that
// all carry the server identity this gateway records, with no ack below
// the acknowledged position: then handling the acks first is the same as
// handling them in order.
func (u *Uplink) acksFirst(msgs []protocol.Message) bool {
	downs, acks := 0, 0
	for _, m := range msgs {
		switch m.(type) {
		case *protocol.DownBatch:
			downs++
		case *protocol.Ack:
			acks++
		}
	}
	if downs == 0 || acks == 0 {
		return false
	}
	p, err := u.st.Positions()
	if err != nil || p.Epoch == "" {
		return false
	}
	for _, m := range msgs {
		switch m := m.(type) {
		case *protocol.DownBatch:
			if m.Epoch != p.Epoch {
				return false
			}
		case *protocol.Ack:
			if m.Epoch != p.Epoch || m.WM < p.Acked || m.WM > p.LastSeq {
				return false
			}
		}
	}
	return true
}

// maxCoalesce bounds the queued messages handled in one turn of the loop.
const maxCoalesce = 256

// coalesce returns first and what else is queued in inbox (without
// waiting), leaving out every plain ack that a later ack of the same
// server identity supersedes: acks carry a cumulative watermark, and
// recording each one is a synced write, so a catch-up that receives acks
// faster than it can sync them records only the newest. An ack with an
// error or a probe's answer is always handled, and so is the last one.
func coalesce(first protocol.Message, inbox <-chan protocol.Message) []protocol.Message {
	msgs := []protocol.Message{first}
drain:
	for len(msgs) < maxCoalesce {
		select {
		case m := <-inbox:
			msgs = append(msgs, m)
		default:
			break drain
		}
	}
	if len(msgs) == 1 {
		return msgs
	}
	out := msgs[:0]
	for i, m := range msgs {
		if a, ok := m.(*protocol.Ack); ok && superseded(a, msgs[i+1:]) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// superseded reports whether a plain ack (no error, no probe answer) is
// followed, among later, by an ack of the same identity with a watermark
// at least as high.
func superseded(a *protocol.Ack, later []protocol.Message) bool {
	if a.Error != "" || a.Answers != 0 {
		return false
	}
	for _, m := range later {
		if b, ok := m.(*protocol.Ack); ok && b.Epoch == a.Epoch && b.WM >= a.WM {
			return true
		}
	}
	return false
}

func (u *Uplink) bump(f func(*State)) {
	u.mu.Lock()
	f(&u.state)
	u.mu.Unlock()
}

// hello asks the server for its watermark (and states this gateway's
// positions); probe, when not 0, names the question (SPEC.md §6).
func (u *Uplink) hello(probe uint64) {
	p, err := u.st.Positions()
	if err != nil {
		return
	}
	u.publish(&protocol.Hello{
		Header: u.header(), AgentVersion: u.cfg.AgentVersion,
		LastSeq: p.LastSeq, AckedSeq: p.Acked, DownSeq: p.Down, Epoch: p.Epoch, HLC: u.clock.Now(),
		FirstSeq: p.First, Probe: probe,
	})
}

func (u *Uplink) header() protocol.Header {
	return protocol.Header{WH: u.cfg.Warehouse, GW: u.cfg.Gateway}
}

func (u *Uplink) publishStatus() {
	st := u.status(true)
	u.pubMu.Lock()
	defer u.pubMu.Unlock()
	if !u.client.IsConnectionOpen() || u.guard.blocked() {
		return
	}
	u.guard.onPublish()
	u.client.Publish(u.topics.Status(u.cfg.Warehouse, u.cfg.Gateway), 1, true, st)
}

func (u *Uplink) publish(m protocol.Message) bool {
	b, err := protocol.Encode(m)
	if err != nil {
		u.setError("encode %s: %v", m.Type(), err)
		return false
	}
	u.pubMu.Lock()
	defer u.pubMu.Unlock()
	if !u.client.IsConnectionOpen() || u.guard.blocked() {
		return false
	}
	u.guard.onPublish()
	u.client.Publish(u.topics.Up(u.cfg.Warehouse, u.cfg.Gateway), 1, false, b)
	return true
}

// An uplink with at least behindFactor full batches beyond what it has
// sent sends batches of up to behindFactor × MaxBatchOps ops (at most
// maxBehindOps, the most --batch-ops allows), within MaxBatchBytes.
const (
	behindFactor = 4
	maxBehindOps = 4096
)

// send publishes batches from s.next while the window allows. With full
// false it sends only full batches (more ops are lingering).
func (u *Uplink) send(s *protocol.Window, full bool) {
	if !u.client.IsConnectionOpen() || !u.greeted.IsZero() {
		return
	}
	p, err := u.st.Positions()
	if err != nil {
		u.setError("read positions: %v", err)
		return
	}
	s.OnAck(p.Acked, time.Now())
	for s.Room(p.LastSeq) {
		maxOps := u.cfg.MaxBatchOps
		if p.LastSeq >= s.Next && p.LastSeq-s.Next >= uint64(behindFactor*maxOps) {
			// Behind (a catch-up): bigger batches, still within the
			// batch's byte bound — fewer messages, acks and synced ack
			// writes for the same ops.
			maxOps = min(behindFactor*maxOps, maxBehindOps)
		}
		// The ops as their commits wrote them, framed without decoding
		// (protocol.RawOpBatch: the same bytes as the decoded batch).
		first, ops, err := u.st.OutboxRaw(s.Next, maxOps, u.cfg.MaxBatchBytes)
		if err != nil {
			u.setError("read outbox: %v", err)
			return
		}
		if len(ops) == 0 {
			return
		}
		if first != s.Next {
			// The server's watermark is below what the retention holds: a
			// hello states the oldest seq held (first_seq), and the server
			// records the seqs before it as lost-ops and acknowledges
			// first_seq-1 (SPEC.md §6.1). Nothing is sent until then.
			u.askLost(s.Next, first)
			return
		}
		if !full && len(ops) < min(maxOps, u.cfg.MaxBatchOps) {
			return
		}
		last := first + uint64(len(ops)) - 1
		if !u.publish(&protocol.RawOpBatch{Header: u.header(), First: first, Last: last, Ops: ops, HLC: u.clock.Now(),
			Deflate: u.feats.Has(protocol.FeatureOpsDeflate)}) {
			return
		}
		u.bump(func(st *State) { st.Batches++ })
		s.Sent(last, time.Now())
	}
}

// Batch is the message that carries ops (consecutive, from the outbox) to
// a server that announced feats: an ops-deflate message when the server
// accepts it, else a plain ops message (SPEC.md §5.1). The uplink sends
// the same bytes framed from the stored ops (protocol.RawOpBatch); Batch
// is that message built from decoded ops.
func Batch(wh, gw string, ops []protocol.Op, hlc protocol.HLC, feats protocol.Features) *protocol.OpBatch {
	return &protocol.OpBatch{
		Header: protocol.Header{WH: wh, GW: gw}, First: ops[0].Seq, Last: ops[len(ops)-1].Seq, Ops: ops, HLC: hlc,
		Deflate: feats.Has(protocol.FeatureOpsDeflate),
	}
}

// Sendable returns the notices a status may carry to a server that
// announced feats, oldest first, at most protocol.MaxNotices: ship
// notices only to a server that takes them (SPEC.md §8, Notices) — an
// older one would acknowledge them without shipping; they wait here.
func Sendable(ns []protocol.Notice, feats protocol.Features) []protocol.Notice {
	out := make([]protocol.Notice, 0, min(len(ns), protocol.MaxNotices))
	for _, n := range ns {
		if len(out) == protocol.MaxNotices {
			break
		}
		if n.Kind == protocol.NoticeShip && !feats.Has(protocol.FeatureShipNotices) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// setFeatures records what the server accepts (from an ack; 0 on a new
// connection, until its ack says more).
func (u *Uplink) setFeatures(f protocol.Features) {
	ship := !u.feats.Has(protocol.FeatureShipNotices) && f.Has(protocol.FeatureShipNotices)
	was, now := u.feats.Has(protocol.FeatureOpsDeflate), f.Has(protocol.FeatureOpsDeflate)
	u.feats = f
	if ship {
		defer u.publishStatus() // ship notices waiting for this server
	}
	if was == now {
		return
	}
	u.bump(func(st *State) { st.OpsDeflate = now })
	u.log.Debug("server's ops-deflate support", "ops_deflate", now)
}

func (u *Uplink) handle(s *protocol.Window, msg protocol.Message) {
	switch m := msg.(type) {
	case *protocol.Ack:
		u.guard.onAck()
		u.greeted = time.Time{}
		u.observeClock(m.HLC)
		// Every ack states what the server accepts: an older server's (or
		// its error ack for a compressed batch it could not read) turns
		// compression off again before the resend.
		if u.feats.Has(protocol.FeatureOpsDeflate) && !m.Features.Has(protocol.FeatureOpsDeflate) {
			u.log.Info("the server no longer announces ops-deflate (an older server or replica?); sending plain batches", "error", m.Error)
		}
		u.setFeatures(m.Features)
		s.Probes = m.Features.Has(protocol.FeatureProbes)
		u.onAck(s, m)
	case *protocol.DownBatch:
		u.observeClock(m.HLC)
		u.onDown(m)
	}
}

// observeClock measures the server's clock against this gateway's and
// merges it, unless it runs more than the maximum offset ahead: then it is
// refused (counted, logged, shown as the uplink's error) and the message
// is otherwise handled as usual — its watermark is still true.
func (u *Uplink) observeClock(h protocol.HLC) {
	skew := h.Millis() - u.clock.Wall().UnixMilli()
	err := u.clock.Update(h)
	u.bump(func(st *State) {
		st.ClockSkewMS = skew
		if err != nil {
			st.ClockRefused++
		}
	})
	if err != nil {
		u.setError("server clock refused: %v", err)
	}
}

func (u *Uplink) onAck(s *protocol.Window, a *protocol.Ack) {
	p, err := u.st.Positions()
	if err != nil {
		return
	}
	u.mu.Lock()
	u.state.Epoch = a.Epoch
	u.mu.Unlock()
	if a.WM > p.LastSeq {
		u.setError("server acked seq %d but this gateway has only committed %d: another agent is using gateway ID %s/%s, or this gateway's data was lost", a.WM, p.LastSeq, u.cfg.Warehouse, u.cfg.Gateway)
		return
	}
	if p.Epoch != "" && (a.Epoch != p.Epoch || a.WM < p.Acked) {
		u.regress(s, p, a) // regress.go
		return
	}
	if u.lostPending && a.WM+1 >= p.First {
		u.setLost(nil)
		u.log.Warn("the server recorded the seqs beyond this gateway's retention as lost-ops; replication resumes", "wm", a.WM)
	}
	if _, err := u.st.Ack(a.WM, a.Epoch); err != nil {
		u.setError("record ack: %v", err)
		return
	}
	if a.Error != "" {
		u.log.Info("server answered with an error", "wm", a.WM, "error", a.Error)
	}
	// A gap or a rejection, or the answer to a timeout's question that
	// shows ops missing: go back (protocol.Window.Answer).
	if s.Answer(a.WM, a.Error != "", a.Answers, time.Now()) {
		u.bump(func(st *State) { st.Resends++ })
	}
}

func (u *Uplink) onDown(b *protocol.DownBatch) {
	p, err := u.st.Positions()
	if err != nil {
		return
	}
	if err := protocol.CheckDown(b); err != nil {
		u.log.Warn("inconsistent downstream batch ignored", "err", err)
		return
	}
	if reset, err := u.st.DownEpoch(b.Epoch); err != nil {
		u.setError("downstream from server identity %s: %v", b.Epoch, err)
		return
	} else if reset {
		u.log.Warn("downstream from another server identity (restored or replaced); starting the downstream again from its beginning",
			"epoch", b.Epoch, "down_seq_before", p.Down)
		p.Down = 0
	}
	if protocol.Judge(p.Down, b.First, b.Last) == protocol.Apply {
		d := decodeDown(b.Items, p.Down, u.log) // down.go
		d.Epoch = b.Epoch
		u.bump(func(st *State) { st.DownItems += uint64(len(b.Items)) })
		if err := u.st.ApplyDownItems(d, b.UpWM, b.Last); err != nil {
			u.setError("apply downstream: %v", err)
			return
		}
		p.Down = b.Last
	}
	u.publish(&protocol.DownAck{Header: u.header(), DownWM: p.Down, Epoch: b.Epoch})
}
