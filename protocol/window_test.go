package protocol

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestWindowGoBackN(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := Window{Size: 10, Timeout: time.Second}
	w.Reset(0, t0)
	require.True(t, w.Room(5))
	w.Sent(4, t0)
	require.Equal(t, uint64(5), w.Next)
	require.False(t, w.Expired(t0.Add(500*time.Millisecond)))
	require.True(t, w.Expired(t0.Add(2*time.Second)))
	require.True(t, w.OnAck(2, t0.Add(2*time.Second)))
	require.False(t, w.OnAck(1, t0), "acks never move backwards")
	w.Rewind(t0)
	require.Equal(t, uint64(3), w.Next)
	w.Sent(12, t0)
	require.False(t, w.Room(20), "window of 10 beyond ack 2 is full")
	require.True(t, w.OnAck(12, t0))
	require.True(t, w.Room(13))
	require.False(t, w.Room(12), "nothing left to send")
}

func TestWindowTimeoutAdaptsToAckLatency(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := Window{Size: 100, Timeout: time.Second, MaxTimeout: time.Minute, Probes: true}
	w.Reset(0, t0)
	require.Equal(t, time.Second, w.RTO(), "before any sample: Timeout")
	now := t0
	for i := uint64(1); i <= 20; i++ {
		w.Sent(i, now)
		now = now.Add(10 * time.Second) // every ack takes 10 s
		require.True(t, w.OnAck(i, now))
	}
	require.InDelta(t, 10*time.Second, w.SRTT(), float64(100*time.Millisecond))
	require.Greater(t, w.RTO(), 10*time.Second, "a slow receiver is not taken for a lost message")
	w.Sent(21, now)
	require.False(t, w.Expired(now.Add(10*time.Second)))
	expired, rewound := w.Expire(now.Add(w.RTO() + time.Millisecond))
	require.True(t, expired)
	require.False(t, rewound, "with probes an expiry asks first")
	require.Equal(t, uint64(22), w.Next, "nothing is resent at an expiry")
	rto := w.RTO()
	_, _ = w.Expire(now.Add(w.RTO() + rto + 2*time.Millisecond))
	require.Equal(t, min(2*rto, time.Minute), w.RTO(), "each expiry doubles the timeout, up to MaxTimeout")

	old := Window{Size: 100, Timeout: time.Second}
	old.Reset(0, t0)
	old.Sent(10, t0)
	expired, rewound = old.Expire(t0.Add(2 * time.Second))
	require.True(t, expired)
	require.True(t, rewound, "without probes an expiry goes back")
	require.Equal(t, uint64(1), old.Next)
}

func TestWindowGoesBackOnlyWhenTheAnswerShowsEntriesMissing(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := Window{Size: 100, Timeout: time.Second, Probes: true}
	w.Reset(0, t0)
	w.Sent(10, t0)
	w.Sent(20, t0)
	expired, _ := w.Expire(t0.Add(1100 * time.Millisecond))
	require.True(t, expired)
	p1 := w.Ask(t0.Add(1100 * time.Millisecond))
	require.False(t, w.Answer(0, false, 0, t0.Add(1200*time.Millisecond)), "an answer to no question (the connection's hello)")
	require.False(t, w.Answer(0, false, p1+100, t0.Add(1200*time.Millisecond)), "an answer to a question never asked")
	require.True(t, w.Answer(0, false, p1, t0.Add(1300*time.Millisecond)), "the question answered with nothing applied: the batches are lost")
	require.Equal(t, uint64(1), w.Next)

	// Sent again; this time the batches are only slow.
	w.Sent(10, t0.Add(2*time.Second))
	w.Sent(20, t0.Add(2*time.Second))
	require.False(t, w.Answer(10, false, 0, t0.Add(2500*time.Millisecond)))
	expired, _ = w.Expire(t0.Add(20 * time.Second))
	require.True(t, expired)
	p2 := w.Ask(t0.Add(20 * time.Second))
	w.Sent(30, t0.Add(21*time.Second)) // sent after the question
	require.False(t, w.Answer(20, false, p2, t0.Add(22*time.Second)), "everything sent before the question arrived: no resend")
	require.Equal(t, uint64(31), w.Next)
	require.False(t, w.Answer(20, false, p2, t0.Add(22*time.Second)), "an answer counts once")
}

func TestWindowGoesBackAfterUnansweredQuestions(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := Window{Size: 100, Timeout: time.Second, Probes: true}
	w.Reset(0, t0)
	w.Sent(10, t0)
	now := t0
	for i := 0; i < GiveUpQuestions; i++ {
		now = now.Add(w.RTO() + time.Millisecond)
		expired, rewound := w.Expire(now)
		require.True(t, expired)
		require.False(t, rewound)
		w.Ask(now)
	}
	now = now.Add(w.RTO() + time.Millisecond)
	expired, rewound := w.Expire(now)
	require.True(t, expired)
	require.True(t, rewound, "after %d questions without an answer, it resends anyway", GiveUpQuestions)
	require.Equal(t, uint64(1), w.Next)
}

func TestWindowIgnoresGapAnswersToWhatWasSentBeforeGoingBack(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := Window{Size: 100, Timeout: time.Second, Probes: true}
	w.Reset(0, t0)
	for last := uint64(10); last <= 50; last += 10 {
		w.Sent(last, t0)
	}
	// 1..10 lost; 11..20, 21..30, ... each answered with a gap.
	require.True(t, w.Answer(0, true, 0, t0), "the first gap goes back")
	w.Sent(50, t0)
	for range 3 {
		require.False(t, w.Answer(0, true, 0, t0), "gaps for batches sent before going back are stale")
	}
	require.False(t, w.Answer(50, false, 0, t0))
	w.Sent(60, t0)
	require.True(t, w.Answer(50, true, 0, t0), "after progress, a gap goes back again")
}

// TestWindowPropertyFIFOReceiver simulates a sender and a receiver that
// handles messages in order, one at a time, with random (also long)
// handling times, over links that lose messages at random. Whatever the
// timing: everything is acknowledged in the end; and when nothing is lost,
// nothing is sent twice.
func TestWindowPropertyFIFOReceiver(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const ms = time.Millisecond
		lossy := rapid.Bool().Draw(t, "lossy")
		head := rapid.Uint64Range(1, 400).Draw(t, "head")
		batch := rapid.Uint64Range(1, 50).Draw(t, "batch")
		w := Window{Size: rapid.Uint64Range(batch, 200).Draw(t, "size"), Timeout: 100 * ms, Probes: true}
		type msg struct {
			first, last uint64 // a hello: probe in first, last 0
			refused     bool
			at          time.Time
		}
		now := time.Unix(0, 0)
		var up, down []msg // in flight, in order; down: wm in last, probe answered in first
		var busyUntil time.Time
		var wm uint64
		sentTo, resent := uint64(0), 0
		w.Reset(0, now)
		lose := func() bool { return lossy && rapid.IntRange(0, 9).Draw(t, "loss") == 0 }
		slow := time.Duration(1) // go-back-N over a long window and a slow receiver: each loss costs a window of handling
		if !lossy {
			slow = time.Duration(rapid.SampledFrom([]int{1, 10}).Draw(t, "slowness"))
		}
		for step := 0; w.Acked < head; step++ {
			if step > 2000000 {
				t.Fatalf("no progress: acked %d of %d", w.Acked, head)
			}
			for w.Room(head) {
				last := min(w.Next+batch-1, head)
				if last <= sentTo {
					resent++
				}
				sentTo = max(sentTo, last)
				if !lose() {
					up = append(up, msg{first: w.Next, last: last, at: now})
				}
				w.Sent(last, now)
			}
			now = now.Add(10 * ms)
			// The receiver takes the next message when it is free.
			if len(up) > 0 && !now.Before(busyUntil) && !now.Before(up[0].at) {
				m := up[0]
				up = up[1:]
				busyUntil = now.Add(slow * time.Duration(rapid.IntRange(0, 300).Draw(t, "handling")) * ms)
				a := msg{at: busyUntil}
				if m.last == 0 {
					a.first = m.first // a hello's probe
				} else if v := Judge(wm, m.first, m.last); v == Apply {
					wm = m.last
				} else {
					a.refused = v == Gap
				}
				a.last = wm
				if !lose() {
					down = append(down, a)
				}
			}
			for len(down) > 0 && !now.Before(down[0].at) {
				w.Answer(down[0].last, down[0].refused, down[0].first, now)
				down = down[1:]
			}
			if expired, _ := w.Expire(now); expired {
				p := w.Ask(now)
				if !lose() {
					up = append(up, msg{first: p, at: now})
				}
			}
		}
		if !lossy && resent > 0 {
			t.Fatalf("nothing was lost but %d batches were sent again", resent)
		}
	})
}

func TestWindowResetForgetsTheLatencyAndAFixedTimeoutStaysFixed(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := Window{Size: 100, Timeout: time.Second}
	w.Reset(0, t0)
	w.Sent(1, t0)
	w.OnAck(1, t0.Add(30*time.Second)) // a partition
	require.Equal(t, 20*time.Second, w.RTO(), "adapted, up to 20 × Timeout")
	w.Reset(1, t0.Add(31*time.Second))
	require.Equal(t, time.Second, w.RTO(), "a new connection measures afresh")

	fixed := Window{Size: 100, Timeout: time.Second, MaxTimeout: time.Second}
	fixed.Reset(0, t0)
	fixed.Sent(1, t0)
	fixed.OnAck(1, t0.Add(30*time.Second))
	require.Equal(t, time.Second, fixed.RTO())
	fixed.Sent(2, t0.Add(30*time.Second))
	expired, rewound := fixed.Expire(t0.Add(32 * time.Second))
	require.True(t, expired)
	require.True(t, rewound)
	require.Equal(t, time.Second, fixed.RTO(), "no back-off beyond MaxTimeout")
}
