package dashboard

import (
	"sort"
	"sync"
	"time"
)

// DefaultMinutes is how many minutes a Series keeps per gateway.
const DefaultMinutes = 60

// DefaultMaxGateways bounds the gateways a Series tracks; past it the one
// heard from longest ago is forgotten.
const DefaultMaxGateways = 10000

// Series keeps, in memory and per gateway, the last Minutes minutes of
// ingest, one bucket a minute: the ops applied and quarantined in that
// minute and the largest backlog sampled in it. Memory is bounded
// (Minutes buckets per gateway, MaxGateways gateways); the series starts
// empty at every start of the server, and each replica keeps its own.
type Series struct {
	minutes, maxGateways int
	now                  func() time.Time

	mu  sync.Mutex
	gws map[gwKey]*ring
}

type gwKey struct{ wh, gw string }

type bucket struct {
	minute      int64 // Unix minute the bucket holds; 0: never used
	applied     int64
	quarantined int64
	backlog     int64
	sampled     bool
}

type ring struct {
	buckets []bucket
	last    int64 // the latest minute written
}

// NewSeries returns an empty series of minutes (DefaultMinutes when ≤ 0)
// per gateway, over the clock now (time.Now when nil).
func NewSeries(minutes int, now func() time.Time) *Series {
	if minutes <= 0 {
		minutes = DefaultMinutes
	}
	if now == nil {
		now = time.Now
	}
	return &Series{minutes: minutes, maxGateways: DefaultMaxGateways, now: now, gws: map[gwKey]*ring{}}
}

// at returns the bucket of the current minute of wh/gw, starting it.
func (s *Series) at(wh, gw string) *bucket {
	m := s.now().Unix() / 60
	k := gwKey{wh, gw}
	r := s.gws[k]
	if r == nil {
		if len(s.gws) >= s.maxGateways {
			s.forgetOldest()
		}
		r = &ring{buckets: make([]bucket, s.minutes)}
		s.gws[k] = r
	}
	b := &r.buckets[int(m%int64(s.minutes))]
	if b.minute != m {
		*b = bucket{minute: m}
	}
	r.last = max(r.last, m)
	return b
}

func (s *Series) forgetOldest() {
	var oldest gwKey
	first := true
	for k, r := range s.gws {
		if first || r.last < s.gws[oldest].last {
			oldest, first = k, false
		}
	}
	delete(s.gws, oldest)
}

// Applied adds a batch's ops applied and quarantined for wh/gw to the
// current minute.
func (s *Series) Applied(wh, gw string, applied, quarantined int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.at(wh, gw)
	b.applied += int64(applied)
	b.quarantined += int64(quarantined)
}

// Backlog records a sample of wh/gw's backlog (ops the gateway holds that
// the server has not applied); a minute keeps its largest sample.
func (s *Series) Backlog(wh, gw string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.at(wh, gw)
	if !b.sampled || n > b.backlog {
		b.backlog, b.sampled = n, true
	}
}

// Point is one minute of a gateway's series.
type Point struct {
	// AtMS is the start of the minute (Unix ms).
	AtMS int64 `json:"at_ms"`
	// Applied and Quarantined are the ops applied and kept aside in it.
	Applied     int64 `json:"applied"`
	Quarantined int64 `json:"quarantined"`
	// Backlog is the largest backlog sampled in the minute; null when no
	// sample was taken in it.
	Backlog *int64 `json:"backlog"`
}

// GatewaySeries is the series of one gateway, oldest minute first.
type GatewaySeries struct {
	Warehouse string  `json:"warehouse"`
	Gateway   string  `json:"gateway"`
	Points    []Point `json:"points"`
}

// Window returns, for every gateway of wh (every warehouse when empty)
// heard from in the window, one point per minute of the last Minutes
// minutes up to the current one, sorted by warehouse and gateway.
func (s *Series) Window(wh string) []GatewaySeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix() / 60
	from := now - int64(s.minutes) + 1
	out := []GatewaySeries{}
	for k, r := range s.gws {
		if (wh != "" && k.wh != wh) || r.last < from {
			continue
		}
		g := GatewaySeries{Warehouse: k.wh, Gateway: k.gw, Points: make([]Point, 0, s.minutes)}
		for m := from; m <= now; m++ {
			p := Point{AtMS: m * 60_000}
			if b := r.buckets[int(m%int64(s.minutes))]; b.minute == m {
				p.Applied, p.Quarantined = b.applied, b.quarantined
				if b.sampled {
					v := b.backlog
					p.Backlog = &v
				}
			}
			g.Points = append(g.Points, p)
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Warehouse != out[j].Warehouse {
			return out[i].Warehouse < out[j].Warehouse
		}
		return out[i].Gateway < out[j].Gateway
	})
	return out
}

// Minutes returns the length of the window.
func (s *Series) Minutes() int { return s.minutes }
