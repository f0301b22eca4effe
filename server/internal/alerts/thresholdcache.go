package alerts

import "sync"

// ThresholdCache answers Threshold from what its source answered before,
// until Forget: ObserveStock asks for a sku's threshold every time the
// order model recomputes the sku, a store read each on the master data,
// for values that change only with the master data. Call Forget after
// every change of master data has committed (this replica's or another's)
// and whenever changes may have been missed; a read that was under way
// when Forget was called is not kept. It is bounded (maxThresholds): past
// that it starts empty again.
type ThresholdCache struct {
	src Thresholds

	mu  sync.Mutex
	gen uint64
	m   map[[2]string]cachedThreshold
}

type cachedThreshold struct {
	t  Threshold
	ok bool
}

// maxThresholds bounds the skus a ThresholdCache keeps.
const maxThresholds = 1 << 17

var _ Thresholds = (*ThresholdCache)(nil)

// NewThresholdCache returns a cache over src.
func NewThresholdCache(src Thresholds) *ThresholdCache {
	return &ThresholdCache{src: src, m: map[[2]string]cachedThreshold{}}
}

// Threshold implements Thresholds. The threshold is shared: callers must
// not modify it.
func (c *ThresholdCache) Threshold(wh, sku string) (Threshold, bool) {
	k := [2]string{wh, sku}
	c.mu.Lock()
	v, hit := c.m[k]
	gen := c.gen
	c.mu.Unlock()
	if hit {
		return v.t, v.ok
	}
	v.t, v.ok = c.src.Threshold(wh, sku)
	c.mu.Lock()
	if c.gen == gen { // no Forget meanwhile: the read is not older than one
		if len(c.m) >= maxThresholds {
			c.m = map[[2]string]cachedThreshold{}
		}
		c.m[k] = v
	}
	c.mu.Unlock()
	return v.t, v.ok
}

// Forget drops everything read so far.
func (c *ThresholdCache) Forget() {
	c.mu.Lock()
	c.gen++
	c.m = map[[2]string]cachedThreshold{}
	c.mu.Unlock()
}
