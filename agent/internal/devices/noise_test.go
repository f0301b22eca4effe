package devices

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNoiseGateBoundsRejectedReadsPerSecond(t *testing.T) {
	g := &noiseGate{maxBad: 5}
	t0 := time.Unix(100, 0)
	handled, reports := 0, 0
	for i := 0; i < 10000; i++ { // 10,000 garbage reads within one second
		h, r := g.admit(t0.Add(time.Duration(i) * 50 * time.Microsecond))
		if h {
			handled++
		}
		if r > 0 {
			reports++
		}
	}
	require.Equal(t, 5, handled)
	require.Equal(t, 1, reports, "one summary per second")
	require.Equal(t, uint64(9995), g.Suppressed())
	h, _ := g.admit(t0.Add(2 * time.Second))
	require.True(t, h, "a new second admits again")
}
