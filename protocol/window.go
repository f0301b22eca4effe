package protocol

import "time"

// Window is the sender side of the sequence rule, shared by the agent's
// upstream and the server's downstream: go-back-N over a bounded window.
// Entries next..head are sent in order; an ack moves Acked; a gap answer
// or a reconnect rewinds Next to Acked+1. It does no I/O and is not safe
// for concurrent use.
//
// The retransmission timeout (RTO) adapts to the measured ack latency the
// way TCP's does (RFC 6298 §2: SRTT + 4·RTTVAR, at least Timeout, doubled
// at each expiry up to MaxTimeout), so that a receiver that is slow —
// batches queued behind other gateways' — is less often mistaken for one
// that lost them. With Probes (a receiver that names the question an
// answer answers: upstream FeatureProbes) an expiry is a question, not a
// resend: the sender asks for the receiver's watermark (Expire, Ask; a
// hello with a probe) and goes back only when the answer shows entries
// sent before the question missing (Answer). Without Probes an expiry
// goes back at once. A sender that ignores all this and resends eagerly
// is still safe: the receiver applies each seq once (SPEC.md §6); it only
// wastes work.
type Window struct {
	Next  uint64 // next seq to send
	Acked uint64 // highest seq the receiver acknowledged
	Size  uint64 // most seqs in flight beyond Acked
	// Timeout is the first and the least RTO; MaxTimeout the most
	// (default 20 × Timeout).
	Timeout    time.Duration
	MaxTimeout time.Duration
	// Probes: the receiver answers questions by name (see above).
	Probes bool

	lastProgress time.Time
	rto          time.Duration // current RTO; 0 until the first expiry or sample
	srtt, rttvar time.Duration
	// marks are the sends not yet acknowledged: the last seq of each and
	// when it was first sent, in seq order (RTT samples).
	marks []mark
	// recovering: the window went back and no ack has moved it since, so
	// gap answers to what was sent before are stale.
	recovering bool
	// questions are the open questions, newest last: a probe and the
	// highest seq sent before it was asked.
	questions []mark
	probe     uint64 // the latest probe
	// unanswered counts the questions asked since the window last moved
	// or a question was answered.
	unanswered int
}

type mark struct {
	last  uint64
	at    time.Time
	probe uint64
}

// maxMarks bounds the RTT sample marks kept (a window of 0 is unbounded):
// beyond it the older half is dropped (fewer samples, none wrong).
const maxMarks = 1024

// maxQuestions bounds the open questions kept (answers can be lost).
const maxQuestions = 8

// GiveUpQuestions is how many questions in a row may go unanswered, with
// no ack moving the window, before an expiry goes back anyway: a receiver
// that announced probes may still share the sender's messages with an
// older one that does not answer them (a rolling upgrade), or drop every
// hello. With the RTO doubling from 3 s that is about 90 s of silence.
const GiveUpQuestions = 5

// Reset sets the window to resume after acked, as after a hello; the
// ack latency is measured afresh.
func (w *Window) Reset(acked uint64, now time.Time) {
	w.Acked, w.Next, w.lastProgress = acked, acked+1, now
	w.marks, w.questions = w.marks[:0], w.questions[:0]
	w.recovering, w.unanswered = false, 0
	// A new connection (or state) is a new path: latencies measured
	// before — a partition, a stalled server — say nothing about it.
	w.srtt, w.rttvar, w.rto = 0, 0, 0
}

// Ask opens a question (after an expiry): it returns the probe to send
// (upstream in a hello) and remembers what was sent before it.
func (w *Window) Ask(now time.Time) uint64 {
	if w.probe == 0 {
		w.probe = uint64(now.UnixNano()) // distinct from an earlier process's
	}
	w.probe++
	if w.probe == 0 {
		w.probe++
	}
	if len(w.questions) >= maxQuestions {
		w.questions = append(w.questions[:0], w.questions[1:]...)
	}
	w.questions = append(w.questions, mark{last: w.Next - 1, at: now, probe: w.probe})
	w.unanswered++
	return w.probe
}

// OnAck records an acknowledgement of wm and reports whether it moved the
// window. An ack below Acked is ignored: acks never move backwards. An ack
// that moves it is a latency sample: the time since the latest send it
// covers was first made.
func (w *Window) OnAck(wm uint64, now time.Time) bool {
	if wm <= w.Acked {
		return false
	}
	w.Acked, w.lastProgress = wm, now
	if w.Next <= wm {
		w.Next = wm + 1
	}
	i := 0
	for i < len(w.marks) && w.marks[i].last <= wm {
		i++
	}
	if i > 0 {
		w.sample(now.Sub(w.marks[i-1].at))
		w.marks = append(w.marks[:0], w.marks[i:]...)
	}
	w.recovering, w.unanswered = false, 0
	w.rto = w.baseRTO()
	return true
}

// sample folds one ack latency into the estimate (RFC 6298 §2.2–2.3).
func (w *Window) sample(r time.Duration) {
	if w.srtt == 0 {
		w.srtt, w.rttvar = r, r/2
		return
	}
	d := w.srtt - r
	if d < 0 {
		d = -d
	}
	w.rttvar = (3*w.rttvar + d) / 4
	w.srtt = (7*w.srtt + r) / 8
}

// baseRTO is the RTO from the estimate, without back-off.
func (w *Window) baseRTO() time.Duration {
	return min(max(w.srtt+4*w.rttvar, w.Timeout), w.maxRTO())
}

func (w *Window) maxRTO() time.Duration {
	if w.MaxTimeout > 0 {
		return max(w.MaxTimeout, w.Timeout)
	}
	return 20 * w.Timeout
}

// RTO is the current retransmission timeout.
func (w *Window) RTO() time.Duration {
	if w.rto == 0 {
		return w.baseRTO()
	}
	return w.rto
}

// SRTT is the smoothed ack latency (0 before the first sample).
func (w *Window) SRTT() time.Duration { return w.srtt }

// Rewind makes the next send start again at Acked+1 (gap, rejection, or
// an answer showing entries missing). Gap answers to what was sent before
// are ignored (Answer) until an ack moves the window.
func (w *Window) Rewind(now time.Time) {
	w.Next, w.lastProgress = w.Acked+1, now
	w.recovering = true
	w.questions = w.questions[:0] // what they ask about is being resent
}

// Expired reports whether sent entries have waited longer than the RTO
// for an ack.
func (w *Window) Expired(now time.Time) bool {
	return w.Next > w.Acked+1 && w.Timeout > 0 && now.Sub(w.lastProgress) > w.RTO()
}

// Expire handles an expiry, if there is one (expired): it doubles the RTO
// (up to MaxTimeout) and restarts the timer. With Probes nothing is resent
// — the entries may only be queued: the caller asks (Ask, then a hello
// with the probe) and Answer judges the answer; without, the window goes
// back to Acked+1 (rewound), as it does after GiveUpQuestions unanswered
// questions.
func (w *Window) Expire(now time.Time) (expired, rewound bool) {
	if !w.Expired(now) {
		return false, false
	}
	w.rto = min(2*w.RTO(), w.maxRTO())
	w.lastProgress = now
	if !w.Probes || w.unanswered >= GiveUpQuestions {
		w.unanswered = 0
		w.Rewind(now)
		return true, true
	}
	return true, false
}

// Answer takes an acknowledgement of wm — refused when it carries an
// error (a gap, a rejected batch), answering probe when not 0 — and
// reports whether the window went back to Acked+1, so that the caller
// resends from there. It goes back on a refusal, unless it already went
// back since the last progress (the refusal answers something sent before
// that); and on the answer to an open question when entries sent before
// the question are still not acknowledged: the receiver handles a
// sender's messages in order, so it has seen them, and lost them.
func (w *Window) Answer(wm uint64, refused bool, probe uint64, now time.Time) bool {
	w.OnAck(wm, now)
	missing := false
	if probe != 0 {
		for i, q := range w.questions {
			if q.probe == probe {
				missing, w.unanswered = q.last > w.Acked, 0
				w.questions = append(w.questions[:0], w.questions[i+1:]...) // and the older ones
				break
			}
		}
	}
	if w.Next <= w.Acked+1 {
		return false // nothing in flight
	}
	if !missing && (!refused || w.recovering) {
		return false
	}
	w.Rewind(now)
	return true
}

// Room reports whether an entry at Next may be sent with head the last
// available seq.
func (w *Window) Room(head uint64) bool {
	return w.Next <= head && (w.Size == 0 || w.Next-1-w.Acked < w.Size)
}

// Sent records that entries up to last were sent.
func (w *Window) Sent(last uint64, now time.Time) {
	if w.Next == w.Acked+1 {
		w.lastProgress = now // the clock starts with the first unacked send
	}
	if last >= w.Next {
		w.Next = last + 1
	}
	// A resend keeps the first send's time: a sample from it may be too
	// long (when the first send was lost), never too short.
	if n := len(w.marks); n == 0 || w.marks[n-1].last < last {
		if n >= maxMarks {
			w.marks = append(w.marks[:0], w.marks[n/2:]...)
		}
		w.marks = append(w.marks, mark{last: last, at: now})
	}
}
