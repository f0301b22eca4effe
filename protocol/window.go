package protocol

import "time"

// Window is the sender side of the sequence rule, shared by the agent's
// upstream and the server's downstream: go-back-N over a bounded window.
// Entries next..head are sent in order; an ack moves Acked; a gap answer,
// a timeout or a reconnect rewinds Next to Acked+1. It does no I/O and is
// not safe for concurrent use.
type Window struct {
	Next         uint64        // next seq to send
	Acked        uint64        // highest seq the receiver acknowledged
	Size         uint64        // most seqs in flight beyond Acked
	Timeout      time.Duration // rewind when no ack progress for this long
	lastProgress time.Time
}

// Reset sets the window to resume after acked, as after a hello.
func (w *Window) Reset(acked uint64, now time.Time) {
	w.Acked, w.Next, w.lastProgress = acked, acked+1, now
}

// OnAck records an acknowledgement of wm and reports whether it moved the
// window. An ack below Acked is ignored: acks never move backwards.
func (w *Window) OnAck(wm uint64, now time.Time) bool {
	if wm <= w.Acked {
		return false
	}
	w.Acked, w.lastProgress = wm, now
	if w.Next <= wm {
		w.Next = wm + 1
	}
	return true
}

// Rewind makes the next send start again at Acked+1 (gap or rejection).
func (w *Window) Rewind(now time.Time) {
	w.Next, w.lastProgress = w.Acked+1, now
}

// Expired reports whether sent entries have waited longer than Timeout for
// an ack; the caller then calls Rewind.
func (w *Window) Expired(now time.Time) bool {
	return w.Next > w.Acked+1 && w.Timeout > 0 && now.Sub(w.lastProgress) > w.Timeout
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
}
