package alerts

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The cache reads a sku's threshold (or its absence) once until Forget,
// and keeps no read that was under way when Forget was called.
func TestThresholdCacheReadsOnceUntilForget(t *testing.T) {
	var mu sync.Mutex
	reads := map[string]int{}
	point := int64(5)
	var during func() // runs inside the next source read
	c := NewThresholdCache(ThresholdsFunc(func(wh, sku string) (Threshold, bool) {
		mu.Lock()
		reads[wh+"/"+sku]++
		p := point
		f := during
		during = nil
		mu.Unlock()
		if f != nil {
			f()
		}
		return Threshold{ReorderPoint: p}, sku != "NONE"
	}))
	for range 3 {
		th, ok := c.Threshold("w", "MILK")
		require.True(t, ok)
		require.Equal(t, int64(5), th.ReorderPoint)
		_, ok = c.Threshold("w", "NONE")
		require.False(t, ok)
	}
	require.Equal(t, map[string]int{"w/MILK": 1, "w/NONE": 1}, reads)

	point = 9
	c.Forget()
	th, _ := c.Threshold("w", "MILK")
	require.Equal(t, int64(9), th.ReorderPoint, "read again after Forget")
	require.Equal(t, 2, reads["w/MILK"])

	// A read under way when the master data changes and Forget runs
	// answers what it read, but is not kept.
	c.Forget()
	during = func() { mu.Lock(); point = 11; mu.Unlock(); c.Forget() }
	th, _ = c.Threshold("w", "MILK")
	require.Equal(t, int64(9), th.ReorderPoint)
	th, _ = c.Threshold("w", "MILK")
	require.Equal(t, int64(11), th.ReorderPoint, "the read older than the Forget was dropped")
	require.Equal(t, 4, reads["w/MILK"])
}
